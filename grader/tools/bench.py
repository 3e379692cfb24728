"""The training-speed bench: epochs of each reference model, trained as a notebook
writes them with plain Keras, then through the grader's instrumentation (its
acceleration included), in one process on one machine, on the backend Keras runs on here.
Imports Keras."""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grader.judge.pipeline import GradingOptions, hook_settings
from grader.protocol.keras_objects import epoch_timer
from grader.protocol.manifest import preamble
from grader.run.backends import Backend
from grader.spec.datasets import Dataset
from grader.spec.exercise import ModelSpec, Spec
from grader.tools.calibrate import machine_fingerprint
from grader.tools.reference_models import compiled_reference, training_arrays


@dataclass(frozen=True)
class EpochStats:
    """Epoch wall times in seconds; the first apart, as it includes building the graph."""

    first: float
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, times: list[float]) -> EpochStats:
        later = times[1:] or times
        return cls(times[0], statistics.median(later), min(later), max(later))


@dataclass(frozen=True)
class ModelBench:
    model: str
    plain: EpochStats
    instrumented: EpochStats

    @property
    def speed_up(self) -> float:
        """How many times faster an epoch runs through the grader than as plainly written."""
        return self.plain.median / self.instrumented.median


@dataclass(frozen=True)
class BenchReport:
    machine: dict[str, Any]
    epochs: int
    models: tuple[ModelBench, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "epochs": self.epochs,
            "models": [{**asdict(model), "speed_up": round(model.speed_up, 3)} for model in self.models],
        }


def fit_as_written(
    model: Any, model_spec: ModelSpec, arrays: tuple[Any, ...], epochs: int, callbacks: list[Any]
) -> None:
    """``fit`` as the exercise's notebook calls it (``verbose=1``, validating on the test set)."""
    x_train, y_train, x_test, y_test = arrays
    with contextlib.redirect_stdout(io.StringIO()):  # the progress bar is part of the cost, not of the output
        model.fit(
            x_train,
            y_train,
            batch_size=model_spec.batch_size,
            epochs=epochs,
            verbose=1,
            validation_data=(x_test, y_test),
            callbacks=callbacks,
        )


def time_epochs(model_spec: ModelSpec, spec: Spec, arrays: tuple[Any, ...], epochs: int) -> list[float]:
    """Build, compile and train a fresh reference model, timing each epoch."""
    timer, times = epoch_timer()
    fit_as_written(compiled_reference(model_spec, spec, arrays[0]), model_spec, arrays, epochs, [timer])
    return times


@contextlib.contextmanager
def instrumented(spec: Spec, data_path: Path, backend: Backend) -> Iterator[None]:
    """The grader's kernel instrumentation, installed in this process as the kernel's preamble
    cell installs it (the same code), then taken out again."""
    import keras

    patched = [(keras.Model, "compile"), (keras.Model, "fit"), (keras.optimizers.Optimizer, "__init__")]
    originals = [(owner, name, getattr(owner, name)) for owner, name in patched]
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as facts_dir:
        exec(preamble(hook_settings(spec, GradingOptions(), backend, facts_dir, str(data_path))), {})
        try:
            yield
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)


def run_bench(
    spec: Spec,
    dataset: Dataset,
    epochs: int,
    model_names: list[str],
    backend: Backend,
    on_model: Callable[[ModelBench], None] = lambda result: None,
) -> BenchReport:
    """Each model plainly, then the same through the instrumentation, one after the other."""
    models = [spec.model(name) for name in model_names]
    arrays = {model.name: training_arrays(spec, dataset, model) for model in models}
    plain = {model.name: time_epochs(model, spec, arrays[model.name], epochs) for model in models}
    results = []
    with instrumented(spec, dataset.path, backend):
        for model in models:
            instrumented_times = time_epochs(model, spec, arrays[model.name], epochs)
            result = ModelBench(model.name, EpochStats.of(plain[model.name]), EpochStats.of(instrumented_times))
            on_model(result)
            results.append(result)
    return BenchReport(machine_fingerprint(), epochs, tuple(results))
