"""What real notebooks write for older Keras and for Colab, adapted so that they run under
Keras 3 here and are graded on their merits; each use becomes a warning that gives the
modern spelling."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

from grader.protocol.keras_objects import KERAS2_HISTORY_KEYS

Note = Callable[[str], None]


def adapt_keras2(keras: Any, note: Note) -> None:
    """``Optimizer(lr=...)`` and ``keras.utils.np_utils``; ``note`` hears of each use."""
    optimizer_class = keras.optimizers.Optimizer
    original_init = optimizer_class.__init__

    def __init__(optimizer: Any, *args: Any, **kwargs: Any) -> None:
        if "lr" in kwargs:
            name = type(optimizer).__name__
            note(f"{name}(lr=...) is Keras 2: write {name}(learning_rate=...)")
            kwargs["learning_rate"] = kwargs.pop("lr")
        original_init(optimizer, *args, **kwargs)

    optimizer_class.__init__ = __init__
    np_utils = types.ModuleType("keras.utils.np_utils")

    def np_utils_attribute(name: str) -> Any:
        if name.startswith("__"):  # introspection by Python or IPython, not the student
            raise AttributeError(name)
        note(f"keras.utils.np_utils.{name} is Keras 2: write keras.utils.{name}")
        return getattr(keras.utils, name)

    np_utils.__getattr__ = np_utils_attribute  # type: ignore[method-assign]
    sys.modules["keras.utils.np_utils"] = np_utils
    keras.utils.np_utils = np_utils
    for old, modern in (("keras.layers.core", "keras.layers"), ("keras.layers.advanced_activations", "keras.layers")):
        sys.modules[old] = _alias(old, keras.layers, f"{old} is Keras 2: import from {modern}", note)
    tensorflow = sys.modules.get("tensorflow")  # loaded by Keras' TensorFlow backend; never loaded for this
    if tensorflow is not None:
        tensorflow.keras.utils.np_utils = np_utils
        sys.modules["tensorflow.keras.utils.np_utils"] = np_utils


def _alias(name: str, target: Any, message: str, note: Note) -> types.ModuleType:
    """A module ``name`` whose attributes are ``target``'s, noting its first use."""
    module = types.ModuleType(name)

    def attribute(attribute_name: str) -> Any:
        if attribute_name.startswith("__"):
            raise AttributeError(attribute_name)
        note(message)
        return getattr(target, attribute_name)

    module.__getattr__ = attribute  # type: ignore[method-assign]
    return module


def adapt_colab(note: Note) -> None:
    """Colab's ``%tensorflow_version 2.x`` line: nothing to do outside Colab."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return

    def tensorflow_version(line: str) -> None:
        note("%tensorflow_version is Colab's: outside Colab it does nothing; remove it")

    shell.register_magic_function(tensorflow_version, "line", "tensorflow_version")


def adapt_fit_arguments(kwargs: dict[str, Any], note: Note) -> None:
    """``fit(nb_epoch=...)``, renamed in place."""
    if "nb_epoch" in kwargs:
        note("fit(nb_epoch=...) is Keras 2: write fit(epochs=...)")
        kwargs["epochs"] = kwargs.pop("nb_epoch")


class LegacyHistory(dict[str, Any]):
    """``history.history`` that still answers Keras 2's ``'acc'`` and ``'val_acc'``, with a warning."""

    def __init__(self, values: dict[str, Any], note: Note) -> None:
        super().__init__(values)
        self.note = note

    def __missing__(self, key: str) -> Any:
        modern = KERAS2_HISTORY_KEYS.get(key)
        if modern is None or modern not in self:
            raise KeyError(key)
        self.note(f"history.history[{key!r}] is Keras 2: write history.history[{modern!r}]")
        return self[modern]
