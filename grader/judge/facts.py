"""Read what the instrumentation exported from the kernel, as untrusted data.

Every value is checked for type, size and shape, and every string and list is cut to a bound
(saying so); anything malformed becomes a reason attached to the model (or the submission),
never a crash of the grader. No TensorFlow here: weights stay on disk until the evaluator
loads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import UntrustedDataError
from grader.evaluation.evaluate import ExportedModel
from grader.evaluation.limits import MAX_CONFIG_BYTES, SAMPLED_FITS
from grader.evaluation.model_config import parse_model_config
from grader.evaluation.untrusted import read_array, read_json
from grader.protocol.fingerprints import count_test_rows
from grader.protocol.manifest import MANIFEST, SNAPSHOT_CONFIG
from grader.spec.architecture import Architecture
from grader.spec.exercise import Schedule

MAX_MANIFEST_BYTES = 32 * 2**20
# Fingerprints of a million rows: far more than any data set graded here.
MAX_FINGERPRINT_BYTES = 8 * 2**20
MAX_FITS = 100
# Models trained under names the spec does not know, read for matching.
MAX_TRAINED = 50
MAX_WEIGHT_FILES = 400
# Epochs kept per metric and fit: a history longer than this is cut, with a warning.
MAX_EPOCHS = 1000
# Characters kept of a string from the kernel (a name, an error message).
MAX_TEXT = 300
MAX_LISTED = 20
# Magnitude beyond which a recorded metric is not a loss or an accuracy but a forgery.
MAX_METRIC = 1e12


@dataclass(frozen=True)
class CompileFacts:
    optimizer: str | None
    learning_rate: float | None
    loss: str | None
    cell: int | None = None
    # The learning rate's schedule; None for a constant learning rate
    schedule: Schedule | None = None


@dataclass(frozen=True)
class FitFacts:
    """One ``fit`` call: what it asked for (``epochs``, the rows of ``x``) and what it did
    (``ran_*``: what Keras was asked to run after quick mode's cut; ``epochs_completed`` and
    ``steps``: what it finished)."""

    batch_size: int | None
    epochs: int | None
    initial_epoch: int
    validation_split: float
    # Rows of x passed to fit, and how many of them are test images (and not training images).
    rows: int | None
    test_rows: int | None
    # None in a history: a value that was not a finite number (NaN, say), kept as a gap.
    history: dict[str, list[float | None]]
    epoch_times: list[float]
    completed: bool
    # Rows of validation_data's images, and how many are test images only.
    validation_rows: int | None = None
    validation_test_rows: int | None = None
    steps_per_epoch: int | None = None
    ran_epochs: int | None = None
    ran_rows: int | None = None
    # Optimizer steps before and after the call (Keras counts one per batch).
    iterations_before: int | None = None
    iterations_after: int | None = None
    # A callback set model.stop_training: the run ended before the epochs it was given.
    stopped_early: bool = False
    # The first rows of x as fit got them: how the notebook prepared its images.
    sample: Path | None = None
    # Where in x the sample's rows were (the first rows, then rows drawn at random)
    sample_positions: Path | None = None
    # Keras' training methods the model did not take from Keras (``train_step`` replaced, ...)
    own_training: tuple[str, ...] = ()
    # The student's cell that called fit.
    cell: int | None = None

    @property
    def epochs_run(self) -> int | None:
        """Epochs the call asked for (``epochs`` counts from 0, ``initial_epoch`` skips some)."""
        return None if self.epochs is None else self.epochs - self.initial_epoch

    @property
    def epochs_completed(self) -> int:
        return len(self.epoch_times)

    @property
    def steps(self) -> int | None:
        if self.iterations_before is None or self.iterations_after is None:
            return None
        return self.iterations_after - self.iterations_before

    @property
    def expected_steps(self) -> int | None:
        """The steps ``ran_epochs`` full epochs over the training part of ``ran_rows`` take
        (whatever ``steps_per_epoch`` said: an epoch is a pass over all the data)."""
        if self.ran_epochs is None or self.ran_rows is None or not self.batch_size or self.batch_size < 1:
            return None
        # Keras holds out the last `validation_split` share of the rows.
        training_rows = math.floor(self.ran_rows * (1 - self.validation_split))
        return self.ran_epochs * math.ceil(training_rows / self.batch_size)

    @property
    def finished(self) -> bool:
        """Whether the call did all it was given to do: every epoch, every batch of each."""
        steps, expected = self.steps, self.expected_steps
        return (
            self.completed
            and not self.stopped_early
            and self.epochs_completed == self.ran_epochs
            and (steps is None or expected is None or steps == expected)
        )


@dataclass(frozen=True)
class BatchTraining:
    """Training outside ``fit``: ``train_on_batch`` calls, and the steps the optimizer took
    that no ``fit`` accounts for (``train_on_batch`` or a custom training loop)."""

    calls: int = 0
    rows: int = 0
    test_rows: int | None = None


@dataclass(frozen=True)
class DrawnRows:
    """The rows Keras drew for a model's training steps over all its fits, whatever ``fit`` was
    given (one row in 16 of each batch fingerprinted)."""

    rows: int = 0
    fingerprinted: int = 0
    # Distinct test images among the fingerprinted rows
    test_rows: int | None = None


@dataclass(frozen=True)
class WeightChange:
    """Weights put into a model that its own training did not produce, and where."""

    what: str
    cell: int | None
    when: str

    def describe(self) -> str:
        where = f"in cell {self.cell}, " if self.cell is not None else ""
        return f"{self.what} ({where}{self.when})"


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
    batches: BatchTraining = field(default_factory=BatchTraining)
    # Optimizer steps when the graded weights were exported, and after the last cell.
    iterations_at_snapshot: int | None = None
    # Optimizer steps outside Keras' training that updated its weights (any optimizer's)
    optimizer_steps_outside: int = 0
    iterations_at_end: int | None = None
    # The exported config, for the evaluator to rebuild the model from.
    config_file: Path | None = None
    # The notebook's variables that named it when it was trained (for a model of the spec: its name).
    variables: tuple[str, ...] = ()
    # Values the optimizer keeps (Keras 3's summary() counts them into "Total params").
    optimizer_parameters: int | None = None
    drawn: DrawnRows = field(default_factory=DrawnRows)
    # Weights put into it that its training did not produce: before it was exported for grading, and after
    weight_changes: tuple[WeightChange, ...] = ()
    weight_changes_after: tuple[WeightChange, ...] = ()

    @property
    def cells(self) -> set[int]:
        """The student's cells that compiled, trained or last held it."""
        found = {fit.cell for fit in self.fits} | {self.cell, self.compile.cell if self.compile else None}
        return {cell for cell in found if cell is not None}

    def exported(self) -> ExportedModel | None:
        """What the evaluator measures of it; None when its architecture could not be read."""
        if self.architecture is None or self.config_file is None:
            return None
        samples = tuple((fit.sample, fit.sample_positions) for fit in reversed(self.fits) if fit.sample is not None)
        return ExportedModel(self.name, self.config_file, self.weights, samples[:SAMPLED_FITS])

    @property
    def steps_outside_fit(self) -> int:
        """Steps the optimizer took before the graded weights were exported that no fit took."""
        if self.iterations_at_snapshot is None:
            return max(self.batches.calls, self.optimizer_steps_outside)
        in_fits = sum(fit.steps or 0 for fit in self.fits if fit.iterations_after is not None)
        return max(0, self.iterations_at_snapshot - in_fits, self.batches.calls, self.optimizer_steps_outside)

    @property
    def given_test_rows(self) -> int:
        """Test images among what its fits and train_on_batch calls were given (every row)."""
        return sum(fit.test_rows or 0 for fit in self.fits) + (self.batches.test_rows or 0)

    @property
    def test_rows(self) -> int:
        """Test images it was trained on, over every fit and train_on_batch call: in what it was
        given, or in the sample of what Keras drew, whichever shows more."""
        return max(self.given_test_rows, self.drawn.test_rows or 0)


@dataclass(frozen=True)
class KernelFacts:
    """What the kernel exported: the models bound to the spec's names at the end, the other
    models the notebook trained (``unclaimed``: under other names, or a variable reused), the
    notebook's environment, and what was malformed or cut."""

    models: dict[str, ModelFacts]
    environment: dict[str, Any]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    unclaimed: tuple[ModelFacts, ...] = ()


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
        manifest = read_json(facts_dir / MANIFEST, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        return KernelFacts({}, {}, ("the grader's instrumentation did not start in this notebook's kernel",))
    except UntrustedDataError as error:
        return KernelFacts({}, {}, (f"the facts exported from the kernel are unreadable: {error}",))
    if not isinstance(manifest, dict):
        return KernelFacts({}, {}, ("the facts exported from the kernel are not a JSON object",))
    models: dict[str, ModelFacts] = {}
    warnings: list[str] = []
    records = _typed(manifest, "models", dict)
    for name in model_names:
        if name not in records:
            continue
        try:
            model, notes = _model_facts(facts_dir, name, records[name], fingerprints, student_cells)
        except (UntrustedDataError, FileNotFoundError) as error:
            warnings.append(f"the record of {name} exported from the kernel is malformed: {_cut(error)}")
            continue
        models[name] = replace(model, variables=(name,))
        warnings.extend(notes)
        warnings.extend(_changed_after_training(models[name], manifest.get("final_configs")))
        warnings.extend(_weights_changed_after_export(models[name]))
    claimed = {record.get("snapshot") for record in records.values() if isinstance(record, dict)}
    unclaimed = []
    for record in list(_typed(manifest, "trained", dict).values())[:MAX_TRAINED]:
        if not isinstance(record, dict) or record.get("snapshot") in claimed:
            continue
        variables = _typed(record, "variables", list)
        name = _cut(variables[0], 60) if variables and isinstance(variables[0], str) else "a model"
        try:
            model, notes = _model_facts(facts_dir, name, record, fingerprints, student_cells)
        except (UntrustedDataError, FileNotFoundError) as error:
            warnings.append(f"the record of a trained model ({name}) is malformed: {_cut(error)}")
            continue
        unclaimed.append(model)
        warnings.extend(notes)
    warnings.extend(_listed(manifest, "export_errors", "a model could not be exported"))
    warnings.extend(_listed(manifest, "legacy", "legacy Keras 2 spelling adapted"))
    warnings.extend(_listed(manifest, "stand_ins", "not installed here"))
    environment = _environment(manifest.get("environment"))
    return KernelFacts(models, environment, tuple(warnings), tuple(unclaimed))


def _cut(value: object, limit: int = MAX_TEXT) -> str:
    """``value`` as text of at most ``limit`` characters, saying how much was left out."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters cut)"


def _listed(manifest: dict[str, Any], key: str, what: str) -> list[str]:
    items: list[Any] = _typed(manifest, key, list)
    notes = [f"{what}: {_cut(item)}" for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        notes.append(f"{what}: {len(items) - MAX_LISTED:,} more not listed")
    return notes


def _environment(raw: Any) -> dict[str, Any]:
    """The notebook's environment as the kernel described it: short strings and lists of them."""
    if not isinstance(raw, dict):
        return {}
    environment: dict[str, Any] = {}
    for key, value in list(raw.items())[:MAX_LISTED]:
        if isinstance(value, list):
            environment[_cut(key, 40)] = [_cut(item, 100) for item in value[:MAX_LISTED]]
        elif value is not None:
            environment[_cut(key, 40)] = _cut(value, 100)
    return environment


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


def _weights_changed_after_export(model: ModelFacts) -> list[str]:
    if not model.weight_changes_after:
        return []
    changes = described(model.weight_changes_after)
    return [f"{model.name}'s weights were replaced after it was trained: {changes}; it is graded as it was trained."]


def described(changes: tuple[WeightChange, ...], shown: int = 3) -> str:
    """The first ``shown`` changes, and how many more there were."""
    text = "; ".join(change.describe() for change in changes[:shown])
    return text + (f"; and {len(changes) - shown} more" if len(changes) > shown else "")


def _inside(facts_dir: Path, relative: Any) -> Path:
    """A path named by the kernel, refused unless it is a plain file name inside ``facts_dir``."""
    if not isinstance(relative, str) or not relative or "/" in relative or relative.startswith("."):
        raise UntrustedDataError(f"invalid file name {_cut(relative, 60)!r}")
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
        raise UntrustedDataError(f"{what} is {_cut(repr(value), 60)}, not a {kind.__name__}")
    if not math.isfinite(value):
        raise UntrustedDataError(f"{what} is not finite")
    return kind(value)


def _cell(value: Any, student_cells: dict[int, int]) -> int | None:
    return student_cells.get(value) if isinstance(value, int) else None


def _model_facts(
    facts_dir: Path, name: str, record: Any, fingerprints: DataFingerprints, student_cells: dict[int, int]
) -> tuple[ModelFacts, list[str]]:
    """A model's facts, and warnings about what in its record was cut or kept as a gap."""
    if not isinstance(record, dict):
        raise UntrustedDataError("not a JSON object")
    snapshot = _inside(facts_dir, record.get("snapshot"))
    architecture, problem, config_file = None, None, None
    try:
        architecture = parse_model_config(read_json(snapshot / SNAPSHOT_CONFIG, MAX_CONFIG_BYTES))
        config_file = snapshot / SNAPSHOT_CONFIG
    except (UntrustedDataError, FileNotFoundError, NotADirectoryError) as error:
        problem = _cut(error) if isinstance(error, UntrustedDataError) else "its configuration was not exported"
    weights = tuple(sorted(path for path in _listing(snapshot) if path.name.startswith("w") and path.suffix == ".npy"))
    fits_raw: list[Any] = _typed(record, "fits", list)
    notes: list[str] = []
    if len(fits_raw) > MAX_FITS:
        notes.append(f"{name} was fitted {len(fits_raw):,} times; the first {MAX_FITS} fits are graded")
    fits = tuple(_fit_facts(facts_dir, fit, fingerprints, name, notes, student_cells) for fit in fits_raw[:MAX_FITS])
    facts = ModelFacts(
        name=name,
        origin="fit" if record.get("origin") == "fit" else "end",
        architecture=architecture,
        problem=problem,
        compile=_compile_facts(record.get("compile"), student_cells),
        fits=fits,
        weights=weights,
        cell=_cell(record.get("cell_position"), student_cells),
        batches=_batch_training(facts_dir, record.get("batches"), fingerprints),
        drawn=_drawn_rows(facts_dir, record.get("drawn"), fingerprints),
        weight_changes=_weight_changes(record.get("weight_events"), student_cells),
        weight_changes_after=_weight_changes(record.get("weight_events_after"), student_cells),
        iterations_at_snapshot=_number(record.get("iterations_at_snapshot"), int, "the optimizer's steps"),
        optimizer_steps_outside=_number(record.get("optimizer_steps_outside_fit", 0), int, "optimizer steps") or 0,
        iterations_at_end=_number(record.get("iterations_at_end"), int, "the optimizer's steps"),
        config_file=config_file,
        optimizer_parameters=_number(record.get("optimizer_parameters"), int, "the optimizer's parameters"),
        variables=tuple(
            _cut(item, 60) for item in _typed(record, "variables", list)[:MAX_LISTED] if isinstance(item, str)
        ),
    )
    return facts, notes


def _listing(folder: Path) -> list[Path]:
    """The regular files directly in ``folder`` (at most ``MAX_WEIGHT_FILES``), links left out."""
    try:
        entries = [entry for entry in folder.iterdir() if entry.is_file() and not entry.is_symlink()]
    except OSError:
        return []
    if len(entries) > MAX_WEIGHT_FILES:
        raise UntrustedDataError(f"the snapshot holds {len(entries):,} files; at most {MAX_WEIGHT_FILES} are read")
    return entries


def _compile_facts(raw: Any, student_cells: dict[int, int]) -> CompileFacts | None:
    if not isinstance(raw, dict):
        return None
    optimizer, loss = raw.get("optimizer"), raw.get("loss")
    return CompileFacts(
        optimizer=_cut(optimizer, 100) if isinstance(optimizer, str) else None,
        learning_rate=_number(raw.get("learning_rate"), float, "the learning rate"),
        loss=_cut(loss, 100) if isinstance(loss, str) else None,
        cell=_cell(raw.get("cell_position"), student_cells),
        schedule=read_schedule(raw.get("learning_rate_schedule")),
    )


# Keys of a schedule's config read, at most
MAX_SCHEDULE_KEYS = 20


def read_schedule(raw: Any) -> Schedule | None:
    """A schedule as the kernel described it, cut to bounds: its name, and config values that
    are numbers, truths or short strings."""
    if not isinstance(raw, dict) or not isinstance(raw.get("class_name"), str):
        return None
    config: dict[Any, Any] = raw["config"] if isinstance(raw.get("config"), dict) else {}
    values: list[tuple[str, float | str | bool | None]] = []
    for key, value in list(config.items())[:MAX_SCHEDULE_KEYS]:
        if isinstance(value, bool) or value is None:
            values.append((_cut(str(key), 60), value))
        elif isinstance(value, int | float):
            number = _number(value, float, f"the schedule's {str(key)[:60]}")
            values.append((_cut(str(key), 60), number))
        elif isinstance(value, str):
            values.append((_cut(str(key), 60), _cut(value, 100)))
    return Schedule(_cut(raw["class_name"], 100), tuple(values))


def _fit_facts(
    facts_dir: Path,
    raw: Any,
    fingerprints: DataFingerprints,
    model: str,
    notes: list[str],
    student_cells: dict[int, int],
) -> FitFacts:
    if not isinstance(raw, dict):
        raise UntrustedDataError("a fit record is not a JSON object")
    rows, test_rows = _rows_and_test_rows(facts_dir, raw, "x", fingerprints)
    validation_rows, validation_test_rows = _rows_and_test_rows(facts_dir, raw, "validation", fingerprints)
    times: list[Any] = _typed(raw, "epoch_times", list)
    if len(times) > MAX_EPOCHS:
        notes.append(f"{model} ran {len(times):,} epochs in one fit; the first {MAX_EPOCHS} are kept")
    return FitFacts(
        batch_size=_number(raw.get("batch_size"), int, "batch_size"),
        epochs=_number(raw.get("epochs"), int, "epochs"),
        initial_epoch=_number(raw.get("initial_epoch", 0), int, "initial_epoch", allow_none=False),
        validation_split=_number(raw.get("validation_split", 0.0), float, "validation_split", allow_none=False),
        rows=rows,
        test_rows=test_rows,
        history=_history(_typed(raw, "history", dict), model, notes),
        epoch_times=[_number(t, float, "an epoch time", allow_none=False) for t in times[:MAX_EPOCHS]],
        completed=raw.get("completed") is True,
        validation_rows=validation_rows,
        validation_test_rows=validation_test_rows,
        steps_per_epoch=_number(raw.get("steps_per_epoch"), int, "steps_per_epoch"),
        ran_epochs=_number(raw.get("ran_epochs"), int, "the epochs run"),
        ran_rows=_number(raw.get("ran_rows"), int, "the rows run"),
        iterations_before=_number(raw.get("iterations_before"), int, "the optimizer's steps"),
        iterations_after=_number(raw.get("iterations_after"), int, "the optimizer's steps"),
        stopped_early=raw.get("stopped_early") is True,
        sample=_inside(facts_dir, raw["x_sample"]) if raw.get("x_sample") is not None else None,
        sample_positions=(
            _inside(facts_dir, raw["x_sample_positions"]) if raw.get("x_sample_positions") is not None else None
        ),
        own_training=tuple(_cut(item, 120) for item in _typed(raw, "own_training", list)[:8] if isinstance(item, str)),
        cell=_cell(raw.get("cell_position"), student_cells),
    )


def _history(raw: dict[str, Any], model: str, notes: list[str]) -> dict[str, list[float | None]]:
    """Per metric, its value at each epoch; what is not a plausible finite number is a gap (None)."""
    history: dict[str, list[float | None]] = {}
    gaps: list[str] = []
    for key, values in list(raw.items())[:MAX_LISTED]:
        if not isinstance(values, list):
            continue
        metric = _cut(key, 60)
        history[metric] = []
        for epoch, value in enumerate(values[:MAX_EPOCHS], start=1):
            plausible = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= MAX_METRIC
            history[metric].append(float(value) if plausible else None)
            if not plausible:
                gaps.append(f"{metric} at epoch {epoch}: {_cut(value, 40)}")
        if len(values) > MAX_EPOCHS:
            notes.append(f"{model}'s history of {metric} has {len(values):,} values; the first {MAX_EPOCHS} are kept")
    if gaps:
        listed = "; ".join(gaps[:5]) + (f"; and {len(gaps) - 5} more" if len(gaps) > 5 else "")
        notes.append(f"{model}'s training history holds values that are not finite numbers ({listed}): shown as gaps")
    return history


def _batch_training(facts_dir: Path, raw: Any, fingerprints: DataFingerprints) -> BatchTraining:
    counted = _counted_rows(facts_dir, raw, ("calls", "rows"), "train_on_batch's", fingerprints)
    return BatchTraining(*counted) if counted else BatchTraining()


def _drawn_rows(facts_dir: Path, raw: Any, fingerprints: DataFingerprints) -> DrawnRows:
    # The kernel saves the distinct fingerprints drawn: each test image counts once.
    counted = _counted_rows(facts_dir, raw, ("rows", "fingerprinted"), "the drawn", fingerprints)
    return DrawnRows(*counted) if counted else DrawnRows()


def _counted_rows(
    facts_dir: Path, raw: Any, counts: tuple[str, str], whose: str, fingerprints: DataFingerprints
) -> tuple[int, int, int | None] | None:
    """A record of rows the kernel counted: its two ``counts``, and how many test images its
    fingerprints file holds (None without one); None for no record."""
    if not isinstance(raw, dict):
        return None
    first, second = (_number(raw.get(key, 0), int, f"{whose} {key}", allow_none=False) for key in counts)
    test_rows = None
    if raw.get("fingerprints") is not None:
        marks = _fingerprints(_inside(facts_dir, raw["fingerprints"]), whose)
        test_rows = count_test_rows(marks, fingerprints.train, fingerprints.test)
    return first, second, test_rows


def _weight_changes(raw: Any, student_cells: dict[int, int]) -> tuple[WeightChange, ...]:
    if not isinstance(raw, list):
        return ()
    changes = [
        WeightChange(
            _cut(item.get("what"), 200), _cell(item.get("cell_position"), student_cells), _cut(item.get("when"), 40)
        )
        for item in raw[:MAX_LISTED]
        if isinstance(item, dict)
    ]
    if len(raw) > MAX_LISTED:
        changes.append(WeightChange(f"and {len(raw) - MAX_LISTED:,} more changes", None, "not listed"))
    return tuple(changes)


def _fingerprints(path: Path, whose: str) -> np.ndarray:
    marks = read_array(path, MAX_FINGERPRINT_BYTES)
    if marks.dtype != np.uint64 or marks.ndim != 1:
        raise UntrustedDataError(f"the fingerprints of {whose} images are {marks.dtype} of shape {marks.shape}")
    return marks


def _rows_and_test_rows(
    facts_dir: Path, raw: dict[str, Any], role: str, fingerprints: DataFingerprints
) -> tuple[int | None, int | None]:
    """Rows of the images fit got as ``role``, and how many of them are test images."""
    shape = raw.get(f"{role}_shape")
    rows = _number(shape[0], int, f"the number of {role} rows") if isinstance(shape, list) and shape else None
    if raw.get(f"{role}_fingerprints") is None or rows is None:
        return rows, None
    marks = _fingerprints(_inside(facts_dir, raw[f"{role}_fingerprints"]), f"fit's {role}")
    if marks.shape != (rows,):
        raise UntrustedDataError(f"the fingerprints of fit's {role} images have shape {marks.shape}, not ({rows},)")
    return rows, count_test_rows(marks, fingerprints.train, fingerprints.test)
