"""The calibration file written by ``grader calibrate``, read as plain data.

For each Keras backend and device kind it was run on (``jax/gpu``), and each
reference model, it holds several seeded runs: their test accuracies (from which
the spec's accuracy ranges are derived), their per-epoch learning curves (whose
spread is the band the reports draw) and their epoch times. No Keras here.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import SpecError

CURVE_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "mae", "val_mae")  # a regression's: its error
# Format 1 held one machine's runs, on TensorFlow; format 2 holds them per backend and device kind.
CALIBRATION_FORMAT = 2
DEFAULT_KEY = "tensorflow/cpu"


@dataclass(frozen=True)
class Band:
    """The lowest and highest value of a metric at each epoch over the reference runs."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {"low": list(self.low), "high": list(self.high)}


@dataclass(frozen=True)
class ModelCalibration:
    test_accuracies: tuple[float, ...]
    bands: dict[str, Band]
    # Every epoch of every run, first epochs apart: they include graph tracing.
    first_epoch_seconds: tuple[float, ...]
    later_epoch_seconds: tuple[float, ...]

    @property
    def median_epoch_seconds(self) -> float | None:
        return statistics.median(self.later_epoch_seconds) if self.later_epoch_seconds else None


@dataclass(frozen=True)
class Calibration:
    machine: dict[str, Any] = field(default_factory=dict)
    models: dict[str, ModelCalibration] = field(default_factory=dict)
    # The backend and device kind the runs were measured on ("jax/gpu"); "" for no runs
    key: str = ""

    def describe_machine(self) -> str:
        machine = self.machine
        if not machine:
            return "an unknown machine"
        gpus = ", ".join(str(gpu) for gpu in machine.get("gpus", [])) or "no GPU"
        backend = machine.get("backend", "tensorflow")
        return (
            f"{machine.get('cpu', 'unknown CPU')} ({machine.get('cores', '?')} cores, {gpus}), "
            f"Keras {machine.get('keras', '?')} on {backend} {machine.get(backend, '?')}"
        )


def epoch_bands(histories: Iterable[dict[str, list[float]]]) -> dict[str, Band]:
    """Per metric, the spread of the runs at each epoch (over the epochs every run has)."""
    runs = list(histories)
    bands = {}
    for metric in CURVE_METRICS:
        curves = [[float(value) for value in run[metric]] for run in runs if run.get(metric)]
        if not curves:
            continue
        epochs = min(len(curve) for curve in curves)
        columns = [[curve[epoch] for curve in curves] for epoch in range(epochs)]
        bands[metric] = Band(tuple(min(column) for column in columns), tuple(max(column) for column in columns))
    return bands


def read_calibrations(path: Path) -> dict[str, dict[str, Any]]:
    """The runs of a calibration file by backend and device kind; an absent file has none."""
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text())
        if document.get("format", 1) == 1:  # one machine's runs, on TensorFlow
            device = "gpu" if document.get("machine", {}).get("gpus") else "cpu"
            return {f"tensorflow/{device}": document}
        return {str(key): dict(runs) for key, runs in document["calibrations"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SpecError(f"the calibration file {path} is malformed ({error}); run `grader calibrate` again.") from None


def read_calibration(path: Path, key: str = DEFAULT_KEY) -> Calibration:
    """The calibration of ``key`` (``backend/device``) in a calibration file, else the nearest
    one: the same backend on another device, then TensorFlow on a CPU, then any. A model's
    accuracy hardly depends on either; its epoch times do, and say where they come from."""
    calibrations = read_calibrations(path)
    if not calibrations:
        return Calibration()
    backend = key.split("/")[0]
    nearest = min(calibrations, key=lambda k: (k != key, k.split("/")[0] != backend, k != DEFAULT_KEY, k))
    try:
        document = calibrations[nearest]
        models = {}
        for name, model in document["models"].items():
            runs = model["runs"]
            times = [[float(seconds) for seconds in run.get("epoch_times", [])] for run in runs]
            models[name] = ModelCalibration(
                test_accuracies=tuple(float(run["test_accuracy"]) for run in runs),
                bands=epoch_bands(run.get("history", {}) for run in runs),
                first_epoch_seconds=tuple(run_times[0] for run_times in times if run_times),
                later_epoch_seconds=tuple(seconds for run_times in times for seconds in run_times[1:]),
            )
        return Calibration(machine=dict(document.get("machine", {})), models=models, key=nearest)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SpecError(f"the calibration file {path} is malformed ({error}); run `grader calibrate` again.") from None
