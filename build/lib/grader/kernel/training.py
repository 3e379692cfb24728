"""``Model.compile`` and ``Model.fit``, wrapped: each call is recorded in the ledger,
training is accelerated without changing what it computes, quick mode shortens it,
and each trained model is exported as soon as its ``fit`` returns."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from grader.kernel.keras2 import LegacyHistory, adapt_fit_arguments
from grader.kernel.ledger import Ledger
from grader.protocol.fingerprints import row_fingerprints
from grader.protocol.keras_objects import describe_compiled, epoch_timer, json_safe
from grader.protocol.manifest import HookSettings

# Keras' own default when fit() gets no batch_size
KERAS_DEFAULT_BATCH_SIZE = 32


def wrap_compile(model_class: Any, ledger: Ledger, settings: HookSettings) -> None:
    original = model_class.compile

    def compile(model: Any, *args: Any, **kwargs: Any) -> Any:
        if settings.steps_per_execution and "steps_per_execution" not in kwargs:
            # The same per-batch steps in the same order, several per graph call: same weights, faster.
            kwargs["steps_per_execution"] = settings.steps_per_execution
        result = original(model, *args, **kwargs)
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
        call = _describe_fit(arguments, ledger)
        ledger.record(model)["fits"].append(call)
        if settings.quick:
            _cut_to_quick(arguments, settings)
        if settings.steps_per_execution and arguments["verbose"] in (1, "auto"):
            arguments["verbose"] = 2  # one line per epoch instead of a progress bar redrawn every batch
        timer, epoch_times = epoch_timer()
        arguments["callbacks"] = [*(arguments["callbacks"] or []), timer]
        history = original(*bound.args, **bound.kwargs)
        call["epoch_times"] = epoch_times
        call["history"] = json_safe(getattr(history, "history", {}))
        call["completed"] = True
        ledger.snapshot(model)
        if isinstance(getattr(history, "history", None), dict):
            history.history = LegacyHistory(history.history, ledger.legacy)
        return history

    fit.__wrapped__ = original  # type: ignore[attr-defined]
    model_class.fit = fit


def _fingerprint(images: Any, role: str, ledger: Ledger) -> str | None:
    if not isinstance(images, np.ndarray) or images.ndim < 2:
        return None
    name = f"fit-{ledger.fit_count()}-{role}.npy"
    np.save(ledger.facts_dir / name, row_fingerprints(images), allow_pickle=False)
    return name


def _shape(value: Any) -> list[int] | None:
    shape = getattr(value, "shape", None)
    try:
        return [int(dim) for dim in shape] if shape is not None else None
    except TypeError:
        return None


def _describe_fit(arguments: dict[str, Any], ledger: Ledger) -> dict[str, Any]:
    x = arguments["x"]
    validation = arguments["validation_data"]
    validation_x = validation[0] if isinstance(validation, (tuple, list)) and validation else None
    batch_size = arguments["batch_size"]
    return {
        "cell_position": ledger.cell_position,
        "batch_size": KERAS_DEFAULT_BATCH_SIZE if batch_size is None else json_safe(batch_size),
        "epochs": json_safe(arguments["epochs"]),
        "initial_epoch": json_safe(arguments["initial_epoch"]),
        "validation_split": json_safe(arguments["validation_split"]),
        "x_shape": _shape(x),
        "x_fingerprints": _fingerprint(x, "x", ledger),
        "validation_shape": _shape(validation_x),
        "validation_fingerprints": _fingerprint(validation_x, "validation", ledger),
        "epoch_times": [],
        "history": {},
        "completed": False,
    }


def _cut_to_quick(arguments: dict[str, Any], settings: HookSettings) -> None:
    """Quick mode: one epoch on a small slice; the record keeps what was asked."""
    arguments["epochs"] = int(arguments["initial_epoch"] or 0) + 1
    for key in ("x", "y", "sample_weight"):
        if isinstance(arguments[key], np.ndarray):
            arguments[key] = arguments[key][: settings.quick_train_rows]
    validation = arguments["validation_data"]
    if isinstance(validation, (tuple, list)):
        arguments["validation_data"] = tuple(
            part[: settings.quick_validation_rows] if isinstance(part, np.ndarray) else part for part in validation
        )
