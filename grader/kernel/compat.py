"""What real notebooks write for older Keras, for Colab and for TensorFlow where it is not
installed, adapted so that they run under Keras 3 here and are graded on their merits; each
use becomes a warning that gives the modern spelling."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
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


# What ``tensorflow.keras`` imports may name, served from Keras where TensorFlow is absent.
TF_KERAS_MODULES = ("activations", "backend", "callbacks", "constraints", "datasets", "datasets.mnist",
                    "initializers", "layers", "losses", "metrics", "models", "optimizers", "optimizers.schedules",
                    "regularizers", "utils")  # fmt: skip
NO_TENSORFLOW = (
    "TensorFlow is not installed where this notebook is graded (Keras runs on {backend} here), and {what} "
    "needs it. Write it with Keras: `import keras`, keras.layers, keras.utils and NumPy arrays."
)


def stand_in_for_tensorflow(keras: Any, note: Note) -> None:
    """Where TensorFlow is not installed, the notebook's ``import tensorflow`` gets a stand-in:
    its ``keras`` is Keras on the backend in use, ``tf.random.set_seed`` seeds Keras, and any
    other part of TensorFlow raises an error that says to write it with Keras. Keras itself
    and other libraries still find no TensorFlow."""
    if importlib.util.find_spec("tensorflow") is not None:
        return
    from keras.src.utils.module_utils import tensorflow as lazy_tensorflow

    # Keras asks once whether TensorFlow is there and remembers: it must hear "no" before any stand-in exists.
    if lazy_tensorflow.available:
        return
    sys.meta_path.insert(0, _TensorFlowStandIn(keras, note))


class _MissingModule(types.ModuleType):
    """A part of TensorFlow: each attribute not set on it is an error that says what to do."""

    def __init__(self, name: str, keras_backend: str) -> None:
        super().__init__(name)
        self._keras_backend = keras_backend

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(NO_TENSORFLOW.format(backend=self._keras_backend, what=f"{self.__name__}.{name}"))


class _TensorFlowStandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, keras: Any, note: Note) -> None:
        self.keras = keras
        self.note = note

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name.partition(".")[0] != "tensorflow" or not _imported_by_the_notebook():
            return None
        if name != "tensorflow":  # a part of TensorFlow the stand-in has not got
            raise ModuleNotFoundError(NO_TENSORFLOW.format(backend=self.keras.backend.backend(), what=name), name=name)
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        backend = self.keras.backend.backend()
        tensorflow = _MissingModule("tensorflow", backend)
        tensorflow.keras = self.keras  # type: ignore[attr-defined]
        tensorflow.random = _MissingModule("tensorflow.random", backend)  # type: ignore[attr-defined]
        tensorflow.random.set_seed = self.keras.utils.set_random_seed
        return tensorflow

    def exec_module(self, module: types.ModuleType) -> None:
        sys.modules["tensorflow.keras"] = self.keras
        for name in TF_KERAS_MODULES:
            sys.modules[f"tensorflow.keras.{name}"] = importlib.import_module(f"keras.{name}")
        self.note(f"tensorflow: its tf.keras ran as Keras on {self.keras.backend.backend()}; write `import keras`")


def _imported_by_the_notebook() -> bool:
    """Whether the import being resolved comes from the notebook's own code (its cells run in
    ``__main__``), not from a library asking whether TensorFlow is there."""
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(("<frozen importlib", importlib.__file__)):
        frame = frame.f_back
    return frame is not None and frame.f_globals.get("__name__") == "__main__"
