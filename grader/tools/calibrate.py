"""Train the spec's reference models with several seeds on the full data set.

The test accuracies give each ``M.accuracy`` range (see the spec's
``[accuracy]`` section); the per-epoch histories and epoch times are kept for
reports and speed comparisons, under the backend and device kind they ran on. Imports Keras.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grader.evaluation.evaluator import measured
from grader.protocol.files import write_atomically
from grader.protocol.keras_objects import epoch_timer, keras_backend
from grader.run.backends import Backend
from grader.spec.calibration import CALIBRATION_FORMAT, epoch_bands, read_calibrations
from grader.spec.datasets import Dataset
from grader.spec.exercise import ModelSpec, Spec
from grader.tools.reference_models import compiled_reference, training_arrays


def machine_fingerprint() -> dict[str, Any]:
    """The processor, Python, and the Keras backend with the accelerators it sees."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), **keras_backend()}


def calibration_key(machine: dict[str, Any]) -> str:
    """What the runs of ``machine`` are keyed by in a calibration file: backend and device kind."""
    return f"{machine['backend']}/{'gpu' if machine['gpus'] else 'cpu'}"


def train_reference(
    model_spec: ModelSpec, spec: Spec, dataset: Dataset, seed: int, steps_per_execution: int
) -> dict[str, Any]:
    """One seeded run of a reference model: its test accuracy, history and epoch times."""
    import keras

    keras.utils.set_random_seed(seed)
    x_train, y_train, x_test, y_test = training_arrays(spec, dataset, model_spec)
    model = compiled_reference(model_spec, spec, x_train, steps_per_execution=steps_per_execution)
    timer, epoch_times = epoch_timer()
    # Trained on the rows the exercise's validation split leaves, as its solution was.
    validation = {"validation_split": spec.data.validation_split} if spec.data.validation_split else {}
    history = model.fit(
        x_train,
        y_train,
        batch_size=model_spec.batch_size,
        epochs=model_spec.epochs,
        validation_data=None if validation else (x_test, y_test),
        verbose=0,
        callbacks=[timer],
        **validation,
    )
    return {
        "seed": seed,
        # The exercise's metric: a regression's mean absolute error under this same key
        "test_accuracy": measured(model, x_test, dataset.y_test, spec.data),
        "history": {key: [round(float(v), 6) for v in values] for key, values in history.history.items()},
        "epoch_times": [round(seconds, 4) for seconds in epoch_times],
    }


def calibrate(
    spec: Spec,
    dataset: Dataset,
    seeds: list[int],
    backend: Backend,
    on_run: Callable[[str, dict[str, Any]], None] = lambda n, r: None,
) -> dict[str, Any]:
    """Every (model, seed) run on ``backend`` (Keras must run on it in this process); ``on_run``
    gets each run as it finishes."""
    models: dict[str, Any] = {}
    for model_spec in spec.fixed_models:
        runs = []
        for seed in seeds:
            runs.append(train_reference(model_spec, spec, dataset, seed, backend.steps_per_execution))
            on_run(model_spec.name, runs[-1])
        bands = epoch_bands(run["history"] for run in runs)
        models[model_spec.name] = {"runs": runs, "band": {metric: band.to_dict() for metric, band in bands.items()}}
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_fingerprint(),
        "steps_per_execution": backend.steps_per_execution,
        "seeds": seeds,
        "models": models,
    }


def write_calibration(document: dict[str, Any], path: Path) -> str:
    """Put ``document``'s runs into the calibration file, in place of earlier runs on the same
    backend and device kind (the others are kept); returns their key."""
    key = calibration_key(document["machine"])
    calibrations = dict(sorted({**read_calibrations(path), key: document}.items()))
    write_atomically(path, json.dumps({"format": CALIBRATION_FORMAT, "calibrations": calibrations}, indent=1) + "\n")
    return key
