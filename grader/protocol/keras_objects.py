"""Descriptions of live Keras objects, the same on both sides of the boundary.

The instrumentation describes the student's models with these functions, and
``grader.check`` describes a model the same way inside a notebook, so the two
read a model alike. Keras is imported only by the functions that need it.
"""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

import numpy as np

# Keras 2 history keys and their Keras 3 names.
KERAS2_HISTORY_KEYS = {"acc": "accuracy", "val_acc": "val_accuracy"}


def json_safe(value: Any) -> Any:
    """``value`` as it reads after a trip through JSON (tuples become lists, objects their repr)."""
    return json.loads(json.dumps(value, default=repr))


def modern_metric(name: str) -> str:
    """A history key under its Keras 3 name (``acc`` -> ``accuracy``)."""
    return KERAS2_HISTORY_KEYS.get(name, name)


def loss_name(loss: Any) -> str | None:
    """A loss as a name: a string as it is, a function by its name, an object by its class."""
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
        "loss": loss_name(getattr(model, "loss", None)),
        "learning_rate_schedule": describe_schedule(getattr(optimizer, "_learning_rate", None)),
    }


def describe_schedule(schedule: Any) -> dict[str, Any] | None:
    """A learning-rate schedule (``ExponentialDecay(...)``) as its class name and the plain
    values of its config; None for a constant learning rate."""
    try:
        import keras

        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            return None
        config = schedule.get_config()
    except Exception:  # a schedule of the notebook's own that cannot say its config
        return {"class_name": type(schedule).__name__, "config": {}}
    plain = (bool, int, float, str, type(None))
    return {
        "class_name": type(schedule).__name__,
        "config": {str(key): value for key, value in config.items() if isinstance(value, plain)},
    }


def notebook_namespace() -> dict[str, Any]:
    """The running notebook's variables; empty outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def epoch_timer() -> tuple[Any, list[float]]:
    """A Keras callback that appends each epoch's wall time in seconds to the list it comes with."""
    import keras

    times: list[float] = []

    class EpochTimer(keras.callbacks.Callback):  # type: ignore[misc]
        started = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            times.append(time.perf_counter() - self.started)

    return EpochTimer(), times


def keras_backend() -> dict[str, Any]:
    """The backend Keras runs on in this process, its version and the accelerators it sees."""
    import importlib
    from importlib import metadata

    import keras

    name = keras.backend.backend()
    module = importlib.import_module(name)
    if name == "tensorflow":
        accelerators = [device.name for device in module.config.list_physical_devices("GPU")]
    elif name == "jax":
        accelerators = [str(device) for device in module.devices() if device.platform != "cpu"]
    elif name == "torch":
        accelerators = [module.cuda.get_device_name(i) for i in range(module.cuda.device_count())]
    else:
        accelerators = []
    return {"backend": name, name: metadata.version(name), "keras": keras.__version__, "gpus": accelerators}
