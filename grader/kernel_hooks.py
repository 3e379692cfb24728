"""Instrumentation that runs inside the student's kernel, before the first cell.

It serves the grader's data set to ``keras.datasets.<name>.load_data()``,
wraps ``Model.compile`` and ``Model.fit`` to record what the notebook asked
for, and exports each model (config as JSON, weights as ``.npy`` arrays) as
soon as its ``fit`` returns, so that a later crash, hang or dead kernel cannot
take a trained model away. ``finish()`` runs after the last cell and exports
models that were never fitted.

Everything written here is untrusted by the grader: the student's code runs
in this process and could change any of it. The grade comes from the grader
re-evaluating the exported weights in a process of its own.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

from grader.fingerprint import row_fingerprints

MANIFEST = "manifest.json"
# Keras' own default when fit() gets no batch_size
KERAS_DEFAULT_BATCH_SIZE = 32

_recorder: _Recorder | None = None


def install(settings: dict[str, Any]) -> None:
    """Set up the instrumentation; called by the grader's preamble cell."""
    global _recorder
    _recorder = _Recorder(settings)
    _recorder.install()


def finish() -> None:
    """Export the models never fitted and note the final state; the grader's last cell."""
    if _recorder is not None:
        _recorder.finish()


def _user_namespace() -> dict[str, Any]:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def json_safe(value: Any) -> Any:
    """``value`` as it reads after a trip through JSON (tuples become lists)."""
    return json.loads(json.dumps(value, default=repr))


def _shape(value: Any) -> list[int] | None:
    shape = getattr(value, "shape", None)
    try:
        return [int(dim) for dim in shape] if shape is not None else None
    except TypeError:
        return None


def _loss_name(loss: Any) -> str | None:
    if loss is None or isinstance(loss, str):
        return loss
    if inspect.isfunction(loss) or inspect.isbuiltin(loss):
        return str(loss.__name__)
    return type(loss).__name__


def describe_compiled(model: Any) -> dict[str, Any] | None:
    """A compiled model's optimizer, learning rate and loss, as every check reads them."""
    if not getattr(model, "compiled", False):
        return None
    optimizer = getattr(model, "optimizer", None)
    try:
        learning_rate: float | None = float(np.asarray(optimizer.learning_rate))  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError):
        learning_rate = None
    return {
        "optimizer": type(optimizer).__name__ if optimizer is not None else None,
        "learning_rate": learning_rate,
        "loss": _loss_name(getattr(model, "loss", None)),
        "steps_per_execution": json_safe(getattr(model, "steps_per_execution", None)),
    }


KERAS2_HISTORY_KEYS = {"acc": "accuracy", "val_acc": "val_accuracy"}


class _LegacyHistory(dict[str, Any]):
    """``history.history`` that still answers Keras 2's ``'acc'`` and ``'val_acc'``, with a warning."""

    def __init__(self, values: dict[str, Any], recorder: _Recorder) -> None:
        super().__init__(values)
        self.recorder = recorder

    def __missing__(self, key: str) -> Any:
        modern = KERAS2_HISTORY_KEYS.get(key)
        if modern is None or modern not in self:
            raise KeyError(key)
        self.recorder.legacy(f"history.history[{key!r}] is Keras 2: write history.history[{modern!r}]")
        return self[modern]


class _Recorder:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.facts_dir = Path(settings["facts_dir"])
        self.data_path = settings["data_path"]
        self.dataset = settings["keras_dataset"]
        self.model_names: list[str] = settings["model_names"]
        self.quick: bool = settings["quick"]
        self.quick_train_rows: int = settings["quick_train_rows"]
        self.quick_validation_rows: int = settings["quick_validation_rows"]
        # 0: run every compile and fit exactly as written
        self.steps_per_execution: int = settings["steps_per_execution"]
        # id(model) -> what compile/fit recorded; the models are kept alive so ids stay unique
        self.records: dict[int, dict[str, Any]] = {}
        self.models: dict[int, Any] = {}
        # Cells run since the preamble (the grader's first cell is position 0). Counted
        # here because IPython versions disagree on when execution_count moves on.
        self.cell_position = 0
        # id(model) -> (snapshot folder, position of the cell that took it)
        self.snapshots: dict[int, tuple[str, int]] = {}
        self.snapshot_serial = 0
        self.manifest: dict[str, Any] = {
            "format": 1,
            "environment": {},
            "models": {},
            "final_configs": {},
            "export_errors": [],
            "legacy": [],
        }

    # -- set-up -------------------------------------------------------------

    def install(self) -> None:
        import keras
        import tensorflow as tf

        self.manifest["environment"] = {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "devices": [device.name for device in tf.config.list_physical_devices()],
        }
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.events.register("pre_run_cell", self._count_cell)
        self._serve_dataset()
        self._wrap_compile(keras.Model)
        self._wrap_fit(keras.Model, keras.callbacks.Callback)
        self._adapt_keras2(keras)
        self._write_manifest()

    def legacy(self, message: str) -> None:
        """Note a Keras 2 spelling that was adapted to run, and its modern form."""
        if message not in self.manifest["legacy"]:
            self.manifest["legacy"].append(message)
            self._write_manifest()

    def _adapt_keras2(self, keras: Any) -> None:
        """Let Keras 2 spellings run under Keras 3; each use becomes a warning (see ``legacy``)."""
        recorder = self
        optimizer_class = keras.optimizers.Optimizer
        original_init = optimizer_class.__init__

        def __init__(optimizer: Any, *args: Any, **kwargs: Any) -> None:
            if "lr" in kwargs:
                name = type(optimizer).__name__
                recorder.legacy(f"{name}(lr=...) is Keras 2: write {name}(learning_rate=...)")
                kwargs["learning_rate"] = kwargs.pop("lr")
            original_init(optimizer, *args, **kwargs)

        optimizer_class.__init__ = __init__
        np_utils = types.ModuleType("keras.utils.np_utils")

        def np_utils_attribute(name: str) -> Any:
            if name.startswith("__"):  # introspection by Python or IPython, not the student
                raise AttributeError(name)
            recorder.legacy(f"keras.utils.np_utils.{name} is Keras 2: write keras.utils.{name}")
            return getattr(keras.utils, name)

        np_utils.__getattr__ = np_utils_attribute  # type: ignore[method-assign]
        sys.modules["keras.utils.np_utils"] = np_utils
        keras.utils.np_utils = np_utils

    def _count_cell(self, info: Any = None) -> None:
        self.cell_position += 1

    def _serve_dataset(self) -> None:
        path = self.data_path

        def load_data(*args: Any, **kwargs: Any) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
            with np.load(path, allow_pickle=False) as arrays:
                return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])

        for prefix in ("keras.src.datasets", "keras.datasets", "keras.api.datasets", "keras._tf_keras.keras.datasets"):
            try:
                module = importlib.import_module(f"{prefix}.{self.dataset}")
            except ImportError:
                continue
            module.load_data = load_data  # type: ignore[attr-defined]

    def _wrap_compile(self, model_class: Any) -> None:
        original = model_class.compile
        recorder = self

        def compile(model: Any, *args: Any, **kwargs: Any) -> Any:
            if recorder.steps_per_execution and "steps_per_execution" not in kwargs:
                # The same per-batch steps in the same order, several per graph call: same weights, faster.
                kwargs["steps_per_execution"] = recorder.steps_per_execution
            result = original(model, *args, **kwargs)
            described = describe_compiled(model)
            recorder._record(model)["compile"] = described and {**described, "cell_position": recorder.cell_position}
            return result

        compile.__wrapped__ = original  # type: ignore[attr-defined]
        model_class.compile = compile

    def _wrap_fit(self, model_class: Any, callback_class: Any) -> None:
        original = model_class.fit
        signature = inspect.signature(original)
        recorder = self

        class EpochTimer(callback_class):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []
                self.started = 0.0

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                self.times.append(time.perf_counter() - self.started)

        def fit(model: Any, *args: Any, **kwargs: Any) -> Any:
            if "nb_epoch" in kwargs:
                recorder.legacy("fit(nb_epoch=...) is Keras 2: write fit(epochs=...)")
                kwargs["epochs"] = kwargs.pop("nb_epoch")
            bound = signature.bind(model, *args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
            call = recorder._describe_fit(arguments)
            recorder._record(model)["fits"].append(call)
            if recorder.quick:
                recorder._cut_to_quick(arguments)
            if recorder.steps_per_execution and arguments["verbose"] in (1, "auto"):
                arguments["verbose"] = 2  # one line per epoch instead of a progress bar redrawn every batch
            timer = EpochTimer()
            arguments["callbacks"] = [*(arguments["callbacks"] or []), timer]
            history = original(*bound.args, **bound.kwargs)
            call["epoch_times"] = timer.times
            call["history"] = json_safe(getattr(history, "history", {}))
            call["completed"] = True
            recorder._snapshot(model)
            if isinstance(getattr(history, "history", None), dict):
                history.history = _LegacyHistory(history.history, recorder)
            return history

        fit.__wrapped__ = original  # type: ignore[attr-defined]
        model_class.fit = fit

    def _fingerprint(self, images: Any, role: str) -> str | None:
        if not isinstance(images, np.ndarray) or images.ndim < 2:
            return None
        name = f"fit-{len(self._all_fits())}-{role}.npy"
        np.save(self.facts_dir / name, row_fingerprints(images), allow_pickle=False)
        return name

    def _describe_fit(self, arguments: dict[str, Any]) -> dict[str, Any]:
        x = arguments["x"]
        validation = arguments["validation_data"]
        validation_x = validation[0] if isinstance(validation, (tuple, list)) and validation else None
        batch_size = arguments["batch_size"]
        return {
            "cell_position": self.cell_position,
            "batch_size": KERAS_DEFAULT_BATCH_SIZE if batch_size is None else json_safe(batch_size),
            "epochs": json_safe(arguments["epochs"]),
            "initial_epoch": json_safe(arguments["initial_epoch"]),
            "validation_split": json_safe(arguments["validation_split"]),
            "x_shape": _shape(x),
            "x_fingerprints": self._fingerprint(x, "x"),
            "validation_shape": _shape(validation_x),
            "validation_fingerprints": self._fingerprint(validation_x, "validation"),
            "epoch_times": [],
            "history": {},
            "completed": False,
        }

    def _cut_to_quick(self, arguments: dict[str, Any]) -> None:
        """Quick mode: one epoch on a small slice; the record keeps what was asked."""
        arguments["epochs"] = int(arguments["initial_epoch"] or 0) + 1
        for key in ("x", "y", "sample_weight"):
            if isinstance(arguments[key], np.ndarray):
                arguments[key] = arguments[key][: self.quick_train_rows]
        validation = arguments["validation_data"]
        if isinstance(validation, (tuple, list)):
            arguments["validation_data"] = tuple(
                part[: self.quick_validation_rows] if isinstance(part, np.ndarray) else part for part in validation
            )

    # -- records and export ---------------------------------------------------

    def _record(self, model: Any) -> dict[str, Any]:
        self.models[id(model)] = model
        return self.records.setdefault(id(model), {"compile": None, "fits": []})

    def _all_fits(self) -> list[dict[str, Any]]:
        return [call for record in self.records.values() for call in record["fits"]]

    def _snapshot(self, model: Any) -> None:
        """Export config and weights now, and bind the spec names that refer to this model."""
        try:
            self.snapshots[id(model)] = (self._export(model, origin="fit"), self.cell_position)
            for name in self._names_bound_to(model):
                self._bind(name, model, *self.snapshots[id(model)], origin="fit")
        except Exception as error:  # never break the student's fit because of an export
            names = ", ".join(self._names_bound_to(model)) or "a model"
            self.manifest["export_errors"].append(f"{names}: {type(error).__name__}: {error}")
        self._write_manifest()

    def _names_bound_to(self, model: Any) -> list[str]:
        namespace = _user_namespace()
        return [name for name in self.model_names if namespace.get(name) is model]

    def _export(self, model: Any, origin: str) -> str:
        self.snapshot_serial += 1
        folder = f"snapshot-{self.snapshot_serial}-{origin}"
        (self.facts_dir / folder).mkdir()
        config = json_safe(model.get_config())
        (self.facts_dir / folder / "config.json").write_text(json.dumps(config))
        for index, weights in enumerate(model.get_weights()):
            np.save(self.facts_dir / folder / f"w{index:03d}.npy", np.asarray(weights), allow_pickle=False)
        return folder

    def _bind(self, name: str, model: Any, snapshot: str, cell_position: int, origin: str) -> None:
        record = self._record(model)
        self.manifest["models"][name] = {
            "snapshot": snapshot,
            "origin": origin,
            "cell_position": cell_position,
            "compile": record["compile"],
            "fits": record["fits"],
        }

    def finish(self) -> None:
        import keras

        namespace = _user_namespace()
        for name in self.model_names:
            model = namespace.get(name)
            if not isinstance(model, keras.Model):
                continue
            try:
                if id(model) in self.snapshots:
                    self._bind(name, model, *self.snapshots[id(model)], origin="fit")
                    self.manifest["final_configs"][name] = json_safe(model.get_config())
                elif name not in self.manifest["models"]:
                    self._bind(name, model, self._export(model, origin="end"), self.cell_position, origin="end")
            except Exception as error:
                self.manifest["export_errors"].append(f"{name}: {type(error).__name__}: {error}")
        self._write_manifest()

    def _write_manifest(self) -> None:
        partial = self.facts_dir / (MANIFEST + ".part")
        partial.write_text(json.dumps(self.manifest, default=repr))
        os.replace(partial, self.facts_dir / MANIFEST)
