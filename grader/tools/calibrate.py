"""Train the spec's reference models with several seeds on the full data set.

The test accuracies give each ``M.accuracy`` range (see the spec's
``[accuracy]`` section); the per-epoch histories and epoch times are kept for
reports and speed comparisons. Imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grader.judge.evaluator import measured_accuracy
from grader.protocol.files import write_atomically
from grader.protocol.keras_objects import epoch_timer
from grader.protocol.manifest import STEPS_PER_EXECUTION
from grader.spec.calibration import epoch_bands
from grader.spec.datasets import Dataset
from grader.spec.exercise import ModelSpec, Spec
from grader.tools.reference_models import compiled_reference, training_arrays


def machine_fingerprint() -> dict[str, Any]:
    import keras
    import tensorflow as tf

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpus": [gpu.name for gpu in tf.config.list_physical_devices("GPU")],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def train_reference(model_spec: ModelSpec, spec: Spec, dataset: Dataset, seed: int) -> dict[str, Any]:
    """One seeded run of a reference model: its test accuracy, history and epoch times."""
    import keras

    keras.utils.set_random_seed(seed)
    x_train, y_train, x_test, y_test = training_arrays(spec, dataset)
    model = compiled_reference(model_spec, spec, steps_per_execution=STEPS_PER_EXECUTION)
    timer, epoch_times = epoch_timer()
    history = model.fit(
        x_train,
        y_train,
        batch_size=model_spec.batch_size,
        epochs=model_spec.epochs,
        validation_data=(x_test, y_test),
        verbose=0,
        callbacks=[timer],
    )
    return {
        "seed": seed,
        "test_accuracy": measured_accuracy(model, x_test, dataset.y_test),
        "history": {key: [round(float(v), 6) for v in values] for key, values in history.history.items()},
        "epoch_times": [round(seconds, 4) for seconds in epoch_times],
    }


def calibrate(
    spec: Spec, dataset: Dataset, seeds: list[int], on_run: Callable[[str, dict[str, Any]], None] = lambda n, r: None
) -> dict[str, Any]:
    """Every (model, seed) run; ``on_run`` gets each run as it finishes."""
    models: dict[str, Any] = {}
    for model_spec in spec.fixed_models:
        runs = []
        for seed in seeds:
            runs.append(train_reference(model_spec, spec, dataset, seed))
            on_run(model_spec.name, runs[-1])
        bands = epoch_bands(run["history"] for run in runs)
        models[model_spec.name] = {"runs": runs, "band": {metric: band.to_dict() for metric, band in bands.items()}}
    return {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_fingerprint(),
        "steps_per_execution": STEPS_PER_EXECUTION,
        "seeds": seeds,
        "models": models,
    }


def write_calibration(document: dict[str, Any], path: Path) -> None:
    write_atomically(path, json.dumps(document, indent=1) + "\n")
