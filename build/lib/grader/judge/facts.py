"""Read what the instrumentation exported from the kernel, as untrusted data.

Every value is checked for type, size and shape; anything malformed becomes a
reason attached to the model (or the submission), never a crash of the grader.
No TensorFlow here: weights stay on disk until the evaluator loads them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import UntrustedDataError
from grader.judge.model_config import parse_model_config
from grader.protocol.fingerprints import count_test_rows
from grader.protocol.manifest import MANIFEST, SNAPSHOT_CONFIG
from grader.spec.architecture import Architecture

MAX_MANIFEST_BYTES = 32 * 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_FITS = 100


@dataclass(frozen=True)
class CompileFacts:
    optimizer: str | None
    learning_rate: float | None
    loss: str | None


@dataclass(frozen=True)
class FitFacts:
    batch_size: int | None
    epochs: int | None
    initial_epoch: int
    validation_split: float
    # Rows of x passed to fit, and how many of them are test images (and not training images).
    rows: int | None
    test_rows: int | None
    history: dict[str, list[float]]
    epoch_times: list[float]
    completed: bool
    # Rows of validation_data's images, and how many are test images only.
    validation_rows: int | None = None
    validation_test_rows: int | None = None

    @property
    def epochs_run(self) -> int | None:
        return None if self.epochs is None else self.epochs - self.initial_epoch


@dataclass(frozen=True)
class ModelFacts:
    name: str
    origin: str  # "fit": exported when fit returned; "end": after the last cell
    architecture: Architecture | None
    problem: str | None  # why the architecture could not be read
    compile: CompileFacts | None
    fits: tuple[FitFacts, ...]
    weights: tuple[Path, ...]
    cell: int | None


@dataclass(frozen=True)
class KernelFacts:
    models: dict[str, ModelFacts]
    environment: dict[str, Any]
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class DataFingerprints:
    """Fingerprints of the grader's own training and test images."""

    train: np.ndarray
    test: np.ndarray


def read_facts(
    facts_dir: Path, model_names: list[str], fingerprints: DataFingerprints, student_cells: dict[int, int]
) -> KernelFacts:
    """Parse ``facts_dir``; models whose record is malformed are reported, not raised."""
    try:
        manifest = _read_json(facts_dir / MANIFEST, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        return KernelFacts({}, {}, ("the grader's instrumentation did not start in this notebook's kernel",))
    except UntrustedDataError as error:
        return KernelFacts({}, {}, (f"the facts exported from the kernel are unreadable: {error}",))
    models: dict[str, ModelFacts] = {}
    warnings: list[str] = []
    records = _typed(manifest, "models", dict)
    for name in model_names:
        if name not in records:
            continue
        try:
            models[name] = _model_facts(facts_dir, name, records[name], fingerprints, student_cells)
        except UntrustedDataError as error:
            warnings.append(f"the record of {name} exported from the kernel is malformed: {error}")
            continue
        warnings.extend(_changed_after_training(models[name], manifest.get("final_configs")))
    warnings.extend(
        f"a model could not be exported: {str(item)[:300]}" for item in _typed(manifest, "export_errors", list)[:20]
    )
    warnings.extend(
        f"legacy Keras 2 spelling adapted: {str(item)[:300]}" for item in _typed(manifest, "legacy", list)[:20]
    )
    return KernelFacts(models=models, environment=_typed(manifest, "environment", dict), warnings=tuple(warnings))


def _typed(record: dict[str, Any], key: str, kind: type) -> Any:
    """``record[key]`` if it is of ``kind``, else an empty one: the kernel may have written anything."""
    value = record.get(key)
    return value if isinstance(value, kind) else kind()


def _changed_after_training(model: ModelFacts, final_configs: Any) -> list[str]:
    """A warning when the model at the end of the notebook differs from the one that was trained."""
    final = final_configs.get(model.name) if isinstance(final_configs, dict) else None
    if final is None or model.architecture is None or model.origin != "fit":
        return []
    try:
        changed = parse_model_config(final) != model.architecture
    except UntrustedDataError:
        changed = True
    if not changed:
        return []
    where = f" in cell {model.cell}" if model.cell is not None else ""
    return [f"{model.name} was changed after it was trained{where}; it is graded as it was trained."]


def _read_json(path: Path, limit: int) -> Any:
    if path.is_symlink():
        raise UntrustedDataError(f"{path.name} is a symbolic link")
    if path.stat().st_size > limit:
        raise UntrustedDataError(f"{path.name} is larger than {limit} bytes")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise UntrustedDataError(f"{path.name} is not valid JSON ({error})") from None


def _inside(facts_dir: Path, relative: Any) -> Path:
    """A path named by the kernel, refused unless it is a plain file name inside ``facts_dir``."""
    if not isinstance(relative, str) or not relative or "/" in relative or relative.startswith("."):
        raise UntrustedDataError(f"invalid file name {relative!r}")
    path = facts_dir / relative
    if path.is_symlink():
        raise UntrustedDataError(f"{relative} is a symbolic link")
    return path


def _number(value: Any, kind: type, what: str, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (kind is int and not float(value).is_integer())
    ):
        raise UntrustedDataError(f"{what} is {value!r}, not a {kind.__name__}")
    if not math.isfinite(value):
        raise UntrustedDataError(f"{what} is not finite")
    return kind(value)


def _cell(value: Any, student_cells: dict[int, int]) -> int | None:
    return student_cells.get(value) if isinstance(value, int) else None


def _model_facts(
    facts_dir: Path, name: str, record: Any, fingerprints: DataFingerprints, student_cells: dict[int, int]
) -> ModelFacts:
    if not isinstance(record, dict):
        raise UntrustedDataError("not a JSON object")
    snapshot = _inside(facts_dir, record.get("snapshot"))
    architecture, problem = None, None
    try:
        architecture = parse_model_config(_read_json(snapshot / SNAPSHOT_CONFIG, MAX_CONFIG_BYTES))
    except (UntrustedDataError, FileNotFoundError) as error:
        problem = str(error) if isinstance(error, UntrustedDataError) else "its configuration was not exported"
    weights = tuple(sorted(path for path in snapshot.glob("w*.npy") if not path.is_symlink()))
    fits_raw: list[Any] = _typed(record, "fits", list)
    return ModelFacts(
        name=name,
        origin="fit" if record.get("origin") == "fit" else "end",
        architecture=architecture,
        problem=problem,
        compile=_compile_facts(record.get("compile")),
        fits=tuple(_fit_facts(facts_dir, fit, fingerprints) for fit in fits_raw[:MAX_FITS]),
        weights=weights,
        cell=_cell(record.get("cell_position"), student_cells),
    )


def _compile_facts(raw: Any) -> CompileFacts | None:
    if not isinstance(raw, dict):
        return None
    optimizer, loss = raw.get("optimizer"), raw.get("loss")
    return CompileFacts(
        optimizer=optimizer if isinstance(optimizer, str) else None,
        learning_rate=_number(raw.get("learning_rate"), float, "the learning rate"),
        loss=loss if isinstance(loss, str) else None,
    )


def _fit_facts(facts_dir: Path, raw: Any, fingerprints: DataFingerprints) -> FitFacts:
    if not isinstance(raw, dict):
        raise UntrustedDataError("a fit record is not a JSON object")
    rows, test_rows = _rows_and_test_rows(facts_dir, raw, "x", fingerprints)
    validation_rows, validation_test_rows = _rows_and_test_rows(facts_dir, raw, "validation", fingerprints)
    history: dict[str, Any] = _typed(raw, "history", dict)
    times: list[Any] = _typed(raw, "epoch_times", list)
    return FitFacts(
        batch_size=_number(raw.get("batch_size"), int, "batch_size"),
        epochs=_number(raw.get("epochs"), int, "epochs"),
        initial_epoch=_number(raw.get("initial_epoch", 0), int, "initial_epoch", allow_none=False),
        validation_split=_number(raw.get("validation_split", 0.0), float, "validation_split", allow_none=False),
        rows=rows,
        test_rows=test_rows,
        history={
            str(key): [_number(v, float, f"history[{key!r}]", allow_none=False) for v in values]
            for key, values in history.items()
            if isinstance(values, list)
        },
        epoch_times=[_number(t, float, "an epoch time", allow_none=False) for t in times],
        completed=raw.get("completed") is True,
        validation_rows=validation_rows,
        validation_test_rows=validation_test_rows,
    )


def _rows_and_test_rows(
    facts_dir: Path, raw: dict[str, Any], role: str, fingerprints: DataFingerprints
) -> tuple[int | None, int | None]:
    """Rows of the images fit got as ``role``, and how many of them are test images."""
    shape = raw.get(f"{role}_shape")
    rows = _number(shape[0], int, f"the number of {role} rows") if isinstance(shape, list) and shape else None
    if raw.get(f"{role}_fingerprints") is None or rows is None:
        return rows, None
    path = _inside(facts_dir, raw[f"{role}_fingerprints"])
    try:
        marks = np.load(path, mmap_mode="r", allow_pickle=False)  # the header is checked before any data is read
    except (OSError, ValueError) as error:
        raise UntrustedDataError(f"the fingerprints of fit's {role} images are unreadable ({error})") from None
    if marks.dtype != np.uint64 or marks.shape != (rows,):
        raise UntrustedDataError(f"the fingerprints of fit's {role} images have shape {marks.shape}, not ({rows},)")
    return rows, count_test_rows(marks, fingerprints.train, fingerprints.test)
