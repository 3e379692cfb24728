"""``Model.compile``, ``Model.fit`` and ``Model.train_on_batch``, wrapped: each call is
recorded in the ledger with what it asked for and what it did (epochs completed, optimizer
steps taken), training is accelerated without changing what it computes, quick mode shortens
it, and each trained model is exported as soon as its ``fit`` returns."""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np

from grader.kernel.compat import LegacyHistory, adapt_fit_arguments
from grader.kernel.ledger import Ledger, optimizer_iterations
from grader.kernel.provenance import provenance_callbacks
from grader.protocol.keras_objects import describe_compiled, epoch_timer, json_safe
from grader.protocol.manifest import HookSettings

# Keras' own default when fit() gets no batch_size
KERAS_DEFAULT_BATCH_SIZE = 32
# Rows of a dataset read to fingerprint it: past this, it is not fingerprinted.
MAX_DATASET_ROWS = 1_000_000


def wrap_compile(model_class: Any, ledger: Ledger, settings: HookSettings) -> None:
    original = model_class.compile

    def compile(model: Any, *args: Any, **kwargs: Any) -> Any:
        accelerated = bool(settings.steps_per_execution) and "steps_per_execution" not in kwargs
        if accelerated:
            # The same per-batch steps in the same order, several per graph call: same weights, faster.
            kwargs["steps_per_execution"] = settings.steps_per_execution
        result = original(model, *args, **kwargs)
        if accelerated:
            ledger.accelerated.add(id(model))
        described = describe_compiled(model)
        ledger.record(model)["compile"] = described and {
            **described,
            "cell_position": ledger.cell_position,
            # Not graded: it shows, for diagnosis, whether the acceleration applied.
            "steps_per_execution": json_safe(getattr(model, "steps_per_execution", None)),
        }
        return result

    compile.__wrapped__ = original  # type: ignore[attr-defined]
    model_class.compile = compile


def wrap_fit(model_class: Any, ledger: Ledger, settings: HookSettings) -> None:
    original = model_class.fit
    signature = inspect.signature(original)

    def fit(model: Any, *args: Any, **kwargs: Any) -> Any:
        adapt_fit_arguments(kwargs, ledger.legacy)
        bound = signature.bind(model, *args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        images = _dataset_images(arguments["x"]) if _is_dataset(arguments["x"]) else arguments["x"]
        call = _describe_fit(arguments, images, ledger)
        call["own_training"] = training_of_its_own(model)
        ledger.record(model)["fits"].append(call)
        if settings.quick:
            _cut_to_quick(arguments, settings, call["batch_size"])
        if arguments["steps_per_epoch"] is not None or arguments["validation_steps"] is not None:
            _run_as_written(model, ledger)
        # What Keras is asked to run, after quick mode's cut: what a complete fit must have done.
        call["ran_epochs"] = _epochs_to_run(arguments)
        rows = _rows(images)
        call["ran_rows"] = min(rows, settings.quick_train_rows) if settings.quick and rows is not None else rows
        if settings.steps_per_execution and arguments["verbose"] in (1, "auto"):
            arguments["verbose"] = 2  # one line per epoch instead of a progress bar redrawn every batch
        timer, epoch_times = epoch_timer()
        # The first sees the weights before any callback of the notebook's can change them, the last after.
        given = arguments["callbacks"]
        inner = getattr(given, "callbacks", None)  # a CallbackList's
        callbacks = list(inner if isinstance(inner, list) else (given or []))
        first, last = provenance_callbacks(model, ledger.provenance, callbacks)
        arguments["callbacks"] = [first, *callbacks, timer, last]
        call["iterations_before"] = optimizer_iterations(model)
        ledger.tap.expect(ledger.drawn(model))
        ledger.keras_training += 1
        try:
            history = original(*bound.args, **bound.kwargs)
        finally:
            ledger.keras_training -= 1
            # Recorded however fit ends: a callback that raises must not hide what was trained.
            ledger.tap.expect(None)
            ledger.provenance.fit_ends(model)
            call["epoch_times"] = epoch_times
            call["iterations_after"] = optimizer_iterations(model)
            call["stopped_early"] = bool(getattr(model, "stop_training", False))
        call["history"] = json_safe(getattr(history, "history", {}))
        call["completed"] = True
        if _trained(call):
            ledger.snapshot(model)
        else:  # a fit of no epoch or no step trained nothing: the snapshot of the fit that trained stays
            ledger.write_manifest()
        if isinstance(getattr(history, "history", None), dict):
            history.history = LegacyHistory(history.history, ledger.legacy)
        return history

    fit.__wrapped__ = original  # type: ignore[attr-defined]
    model_class.fit = fit


def _trained(call: dict[str, Any]) -> bool:
    """Whether a fit that returned took any training step."""
    before, after = call["iterations_before"], call["iterations_after"]
    return bool(call["epoch_times"]) and (before is None or after is None or after > before)


def _run_as_written(model: Any, ledger: Ledger) -> None:
    """No acceleration for a model whose fit counts its steps: Keras runs whole executions of
    ``steps_per_execution`` batches, past a smaller ``steps_per_epoch``."""
    if id(model) in ledger.accelerated:
        ledger.accelerated.discard(id(model))
        model.steps_per_execution = 1
        model.train_function = model.test_function = model.predict_function = None  # rebuilt for one step


def wrap_train_on_batch(model_class: Any, ledger: Ledger) -> None:
    """Training outside ``fit`` is no way around the checks: each batch is recorded."""
    original = model_class.train_on_batch

    def train_on_batch(model: Any, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        ledger.record_batch(model, x)
        ledger.keras_training += 1  # counted as a batch already
        try:
            return original(model, x, *args, **kwargs)
        finally:
            ledger.keras_training -= 1

    train_on_batch.__wrapped__ = original  # type: ignore[attr-defined]
    model_class.train_on_batch = train_on_batch


def wrap_optimizer_steps(optimizer_class: Any, ledger: Ledger) -> None:
    """An optimizer step outside Keras' ``fit`` and ``train_on_batch`` (a ``GradientTape`` loop of
    the notebook's own, with any optimizer, traced in a ``tf.function`` or not) is counted
    against each variable it updates: a model whose weights it updated was trained outside fit."""
    original = optimizer_class.apply

    def apply(optimizer: Any, grads: Any, trainable_variables: Any = None) -> Any:
        if not ledger.keras_training:
            try:
                variables = trainable_variables if trainable_variables is not None else optimizer._trainable_variables
                for variable in list(variables):
                    ledger.applied_outside[id(variable)] = ledger.applied_outside.get(id(variable), 0) + 1
            except Exception:  # variables that cannot be listed: counted where they can
                pass
        return original(optimizer, grads, trainable_variables)

    apply.__wrapped__ = original  # type: ignore[attr-defined]
    optimizer_class.apply = apply


def _epochs_to_run(arguments: dict[str, Any]) -> int | None:
    try:
        return int(arguments["epochs"]) - int(arguments["initial_epoch"] or 0)
    except (TypeError, ValueError):
        return None


def _rows(value: Any) -> int | None:
    """Rows of an array-like of images (a NumPy array, a tensor of any backend, a nested list)."""
    shape = _shape(value)
    return shape[0] if shape else None


def _shape(value: Any) -> list[int] | None:
    shape = getattr(value, "shape", None)
    if shape is None and isinstance(value, (list, tuple)) and value and not isinstance(value[0], (list, tuple)):
        return None  # a list of several inputs, not of rows
    try:
        return [int(dim) for dim in (shape if shape is not None else np.shape(value))]
    except (TypeError, ValueError):
        return None


def _is_dataset(value: Any) -> bool:
    """A ``tf.data.Dataset``: iterable again and again, batched by itself."""
    return hasattr(value, "element_spec") and hasattr(value, "take")


def _dataset_images(dataset: Any) -> np.ndarray | None:
    """The images of one pass over a dataset, for their fingerprints (MNIST's take a second)."""
    batches = []
    rows = 0
    try:
        for element in dataset:
            images = np.asarray(element[0] if isinstance(element, (tuple, list)) else element)
            batches.append(images)
            rows += len(images)
            if rows > MAX_DATASET_ROWS:
                return None
    except Exception:  # a dataset that cannot be read twice, or not as arrays: no fingerprints
        return None
    return np.concatenate(batches) if batches else None


def _dataset_batch_size(dataset: Any) -> int | None:
    """The batch size a ``tf.data`` pipeline was batched with, from its ``batch`` step."""
    node = dataset
    for _ in range(50):
        if node is None:
            return None
        size = getattr(node, "_batch_size", None)
        if size is not None:
            try:
                return int(np.asarray(size))
            except (TypeError, ValueError):
                return None
        node = getattr(node, "_input_dataset", None)
    return None


# The methods through which Keras' fit trains a model: replaced, they train it otherwise
TRAINING_METHODS = ("train_step", "test_step", "compute_loss", "call")


def training_of_its_own(model: Any) -> list[str]:
    """Which of Keras' training methods ``model`` does not take from Keras: replaced on the
    instance, or defined by a class that is not Keras' own (a notebook's subclass of
    ``keras.Sequential`` overriding ``train_step``). Keras' own classes live in its modules."""
    found = []
    for name in TRAINING_METHODS:
        if name in vars(model):
            found.append(f"{name} replaced on the model")
            continue
        owner = next((klass for klass in type(model).__mro__ if name in vars(klass)), None)
        module = str(getattr(owner, "__module__", "") or "")
        if owner is not None and not module.startswith(("keras.", "keras", "tf_keras", "tensorflow")):
            found.append(f"{name} of the notebook's class {owner.__name__}")
    return found[:8]


def _describe_fit(arguments: dict[str, Any], x: Any, ledger: Ledger) -> dict[str, Any]:
    """What a fit asked for; ``x`` its images (a dataset's, read in one pass)."""
    validation = arguments["validation_data"]
    validation_x = validation[0] if isinstance(validation, (tuple, list)) and validation else None
    batch_size = _dataset_batch_size(arguments["x"]) if _is_dataset(arguments["x"]) else arguments["batch_size"]
    return {
        "cell_position": ledger.cell_position,
        "batch_size": KERAS_DEFAULT_BATCH_SIZE if batch_size is None else json_safe(batch_size),
        "epochs": json_safe(arguments["epochs"]),
        "initial_epoch": json_safe(arguments["initial_epoch"]),
        "validation_split": json_safe(arguments["validation_split"]),
        "steps_per_epoch": json_safe(arguments["steps_per_epoch"]),
        "x_shape": _shape(x),
        "x_fingerprints": ledger.save_fingerprints(x, "x"),
        **dict(zip(("x_sample", "x_sample_positions"), ledger.save_sample(x), strict=True)),
        "validation_shape": _shape(validation_x),
        "validation_fingerprints": ledger.save_fingerprints(validation_x, "validation"),
        "epoch_times": [],
        "history": {},
        "completed": False,
    }


def _cut_to_quick(arguments: dict[str, Any], settings: HookSettings, batch_size: Any) -> None:
    """Quick mode: one epoch on a small slice (none where none was asked); the record keeps what
    was asked."""
    asked = _epochs_to_run(arguments)
    arguments["epochs"] = int(arguments["initial_epoch"] or 0) + (1 if asked is None or asked > 0 else 0)
    batches = math.ceil(
        settings.quick_train_rows / (batch_size if isinstance(batch_size, int) and batch_size > 0 else 32)
    )
    if _is_dataset(arguments["x"]):
        arguments["x"] = arguments["x"].take(batches)
    elif hasattr(arguments["x"], "__next__") or (
        hasattr(arguments["x"], "__getitem__") and _rows(arguments["x"]) is None
    ):
        # a generator or a keras.utils.PyDataset: as many batches as the slice holds
        arguments["steps_per_epoch"] = min(arguments["steps_per_epoch"] or batches, batches)
    for key in ("x", "y", "sample_weight"):
        if _rows(arguments[key]) is not None and hasattr(arguments[key], "__getitem__"):
            arguments[key] = arguments[key][: settings.quick_train_rows]
    validation = arguments["validation_data"]
    if isinstance(validation, (tuple, list)):
        arguments["validation_data"] = tuple(
            part[: settings.quick_validation_rows] if _rows(part) is not None else part for part in validation
        )
