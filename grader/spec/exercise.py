"""The exercise spec: a TOML file read into frozen dataclasses.

Nothing about a particular exercise lives in the grader's code; everything it
checks comes from here. See ``reference/mnist_mlp.toml`` for the format.
"""

from __future__ import annotations

import hashlib
import math
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from grader.errors import SpecError
from grader.spec.architecture import Architecture, with_inputs_checked
from grader.spec.calibration import DEFAULT_KEY, Calibration, read_calibration
from grader.spec.keys import SPEC_KEYS, check_keys, check_tables
from grader.spec.layers import Layer
from grader.spec.preprocessing import Preprocessing
from grader.spec.questions import Question, read_questions

# The checks of each model, in the order reports list them: the keys of [points].
CHECK_KINDS = tuple(key.name for key in SPEC_KEYS if key.section == "points")
MODEL_KINDS = ("fixed", "improvement")
ModelKind = Literal["fixed", "improvement"]
# The reference folder is installed as data files (see pyproject.toml).
INSTALLED_REFERENCE = Path(sys.prefix) / "share" / "keras-exercise-grader" / "reference"


def _default_spec() -> Path:
    """The MNIST exercise's spec: in the source tree, or where ``pip install`` put it."""
    candidates = [Path(__file__).resolve().parents[2] / "reference", INSTALLED_REFERENCE]
    return next((folder for folder in candidates if folder.is_dir()), candidates[0]) / "mnist_mlp.toml"


DEFAULT_SPEC = _default_spec()
LAYER_KEYS = {field.name for field in fields(Layer)}


TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Metric:
    """What the grader measures of a model on the test rows: a classifier's accuracy (higher is
    better) or a regression's mean absolute error (lower is better); the names Keras gives it
    in a training history's validation entries. ``key`` names it in data (the evaluator's
    answers, results.json: ``test_accuracy``, ``test_mean_absolute_error``), ``name`` in text."""

    key: str
    name: str
    higher_is_better: bool
    history_keys: tuple[str, ...]

    def beyond(self, value: float, bound: float) -> bool:
        """Whether ``value`` is better than ``bound``."""
        return value > bound if self.higher_is_better else value < bound


ACCURACY = Metric("accuracy", "accuracy", True, ("val_accuracy", "val_acc"))
MEAN_ABSOLUTE_ERROR = Metric(
    "mean_absolute_error", "mean absolute error", False, ("val_mae", "val_mean_absolute_error")
)
METRICS = {"classification": ACCURACY, "regression": MEAN_ABSOLUTE_ERROR}
# By key, for what reads a measurement back (results.json)
METRICS_BY_KEY = {metric.key: metric for metric in METRICS.values()}


@dataclass(frozen=True)
class DataSpec:
    # The keras.datasets loader the grader serves the arrays to ("" when there is none)
    keras_dataset: str
    url: str | None
    file_sha256: str | None
    image_shape: tuple[int, ...]
    classes: int
    train_samples: int
    test_samples: int
    flatten: bool
    # The exercise's preparation of the values: ``(x - center) / scale``, one number for every
    # value, or one per feature of a row of features (per channel of a colour image)
    scale: float | tuple[float, ...]
    # Pixels the exercise pads each image with (LeNet's 28x28 to 32x32), and whether it adds a
    # channel axis (28, 28) -> (28, 28, 1).
    pad: int = 0
    channel_axis: bool = False
    # The data file beside the spec (absolute), placed read-only in the folder every notebook
    # runs in under its own name, for notebooks that open it (``np.load("digits.npz")``)
    file: str | None = None
    # "classification" (integer classes) or "regression" (a number per row)
    task: str = "classification"
    center: float | tuple[float, ...] = 0.0
    # The first class's label in the data file: 1 where classes are counted from 1
    first_class: int = 0
    # A private test set beside the spec (absolute), never placed in a notebook's sandbox: the
    # evaluator measures on it instead of the data set's own test rows
    private_test: str | None = None
    # The share of the training rows the exercise keeps for validation (Keras'
    # ``validation_split``, or a split made by hand): a model is trained on the rest
    validation_split: float = 0.0

    @property
    def metric(self) -> Metric:
        return METRICS[self.task]

    @property
    def name(self) -> str:
        """What the data set is called in messages: its loader's name or its file's."""
        return Path(self.file).name if self.file else self.keras_dataset

    @property
    def preprocessing(self) -> Preprocessing:
        """The exercise's way of preparing the images: ``(x - center) / scale``, padded,
        reshaped (rows of features or tokens: ``(x - center) / scale``)."""
        values = _values_map(self.center, self.scale)
        if len(self.image_shape) == 1:
            rows = (*self.image_shape, 1) if self.channel_axis else self.image_shape
            return Preprocessing(**values, shape=rows)
        height, width = (dim + 2 * self.pad for dim in self.image_shape[:2])
        shape: tuple[int, ...] = (height, width, *self.image_shape[2:])
        if self.flatten:
            shape = (math.prod(shape),)
        elif self.channel_axis:
            shape = (*shape, 1)
        return Preprocessing(**values, shape=shape, pad=self.pad)


def _values_map(center: float | tuple[float, ...], scale: float | tuple[float, ...]) -> dict[str, Any]:
    """``(x - center) / scale`` as a ``Preprocessing``'s keys: one shared map, or one per feature."""
    if isinstance(center, tuple) or isinstance(scale, tuple):
        count = len(center) if isinstance(center, tuple) else len(scale)  # type: ignore[arg-type]
        centers = center if isinstance(center, tuple) else (center,) * count
        scales = scale if isinstance(scale, tuple) else (scale,) * count
        return {
            "scale": 1.0,
            "offset": 0.0,
            "feature_scale": tuple(1 / each for each in scales),
            "feature_offset": tuple(-c / each for c, each in zip(centers, scales, strict=True)),
        }
    return {"scale": 1 / scale, "offset": -center / scale}


@dataclass(frozen=True)
class AccuracyRange:
    min: float
    max: float
    derivation: str

    def contains(self, accuracy: float) -> bool:
        return self.min <= accuracy <= self.max


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule: its Keras class, and the plain values of its config."""

    class_name: str
    config: tuple[tuple[str, float | str | bool | None], ...]

    def describe(self) -> str:
        """E.g. ``ExponentialDecay(initial_learning_rate=0.01, decay_steps=1000, decay_rate=0.9)``."""
        values = ", ".join(
            f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}" for key, value in self.config
        )
        return f"{self.class_name}({values})"


@dataclass(frozen=True)
class ModelSpec:
    """A model the exercise asks for. ``fixed``: these layers, trained so. ``improvement``: the
    open answer to "suggest an improvement", any allowed layers under any name, judged on what
    the grader measures and compared with the ``baseline`` model's reference runs."""

    name: str
    layers: tuple[Layer, ...]
    params: int | None  # None for an improvement
    optimizer: str
    learning_rate: float
    # The losses accepted, the exercise's own first (sparse labels need the sparse one).
    losses: tuple[str, ...]
    batch_size: int
    epochs: int
    accuracy: AccuracyRange | None  # None until `grader calibrate` has run
    points: dict[str, float]
    kind: ModelKind = "fixed"
    baseline: str | None = None
    max_params: int | None = None
    # What its accuracy check measures (a regression's: the mean absolute error)
    metric: Metric = ACCURACY
    # A classifier of two classes: the output forms accepted ("sigmoid": one sigmoid unit,
    # "softmax": two softmax units), the spec's own first; empty: the spec's form only
    binary_forms: tuple[str, ...] = ()
    # A learning rate that follows a schedule (``learning_rate`` is then its initial rate)
    schedule: Schedule | None = None

    @property
    def loss(self) -> str:
        return self.losses[0]


@dataclass(frozen=True)
class Spec:
    path: Path
    name: str
    solution: Path | None
    data: DataSpec
    models: tuple[ModelSpec, ...]
    # Identifies the spec and its calibration in cache keys and results.
    digest: str
    _calibration_path: Path | None = None
    calibration: Calibration = field(default_factory=Calibration)
    # The notebook students start from, if the spec names one
    handout: Path | None = None
    # The written questions, graded by hand (``grader review``)
    questions: tuple[Question, ...] = ()

    @property
    def model_names(self) -> list[str]:
        return [model.name for model in self.models]

    @property
    def fixed_models(self) -> tuple[ModelSpec, ...]:
        """The models the exercise states layer by layer: those with reference runs."""
        return tuple(model for model in self.models if model.kind == "fixed")

    def expected_architecture(self, model: ModelSpec) -> Architecture:
        """The model as the exercise builds it: its layers after the prepared images."""
        return Architecture(input_shape=self.data.preprocessing.shape, layers=model.layers)

    def model(self, name: str) -> ModelSpec:
        return next(model for model in self.models if model.name == name)

    @property
    def calibration_path(self) -> Path | None:
        return self._calibration_path

    @property
    def files(self) -> list[Path]:
        """The spec file, its calibration file and its data file, those it has: what grading
        with the spec needs beside it."""
        calibration, data = self._calibration_path, Path(self.data.file) if self.data.file else None
        return [self.path, *(path for path in (calibration, data) if path is not None and path.is_file())]

    def require_accuracy_ranges(self) -> None:
        """Full grading needs every range; say how to get them."""
        missing = [model.name for model in self.models if model.accuracy is None]
        if missing and all(self.model(name).kind == "improvement" for name in missing):
            missing = [f"{name} (its baseline's)" for name in missing]
        if missing:
            raise SpecError(
                f"the spec {self.path} has no accuracy range for {', '.join(missing)}: "
                "run `grader calibrate` to measure them, or grade with --quick."
            )


def load_spec(path: Path = DEFAULT_SPEC, calibration_key: str = DEFAULT_KEY) -> Spec:
    """Read and validate a spec file, its accuracy ranges from the calibration runs of
    ``calibration_key`` (``backend/device``, or the nearest); raise ``SpecError`` naming the
    offending key."""
    try:
        raw_bytes = path.read_bytes()
    except OSError as error:
        raise SpecError(f"cannot read the spec {path}: {error.strerror}. Pass an existing file with --spec.") from None
    try:
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SpecError(f"the spec {path} is not valid TOML: {error}") from None
    try:
        return _build_spec(path.resolve(), raw, raw_bytes, calibration_key)  # bound into sandboxes by its path
    except (KeyError, TypeError, ValueError) as error:
        raise SpecError(f"the spec {path} is incomplete or malformed: {_describe(error)}") from None


def _describe(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing key {error.args[0]!r}"
    return str(error)


def _initial_rate(model: str, value: Any) -> float:
    """A ``learning_rate``: a number, or a schedule's table and its ``initial_learning_rate``."""
    if isinstance(value, dict):
        if "initial_learning_rate" not in value:
            raise ValueError(f"{model}'s learning_rate schedule names no initial_learning_rate")
        return float(value["initial_learning_rate"])
    return float(value)


def _schedule(model: str, value: Any) -> Schedule | None:
    """A ``learning_rate`` given as a schedule: ``{ schedule = "ExponentialDecay",
    initial_learning_rate = 0.01, decay_steps = 1000, decay_rate = 0.9 }``, in Keras' names."""
    if not isinstance(value, dict):
        return None
    if not isinstance(value.get("schedule"), str):
        raise ValueError(f"{model}'s learning_rate is a table without `schedule`, the Keras class of the schedule")
    config = tuple((str(key), item) for key, item in value.items() if key != "schedule")
    if not all(isinstance(item, bool | int | float | str) for _, item in config):
        raise ValueError(f"{model}'s learning_rate schedule holds a value that is not a number, truth or text")
    return Schedule(value["schedule"], tuple((key, float(item) if type(item) is int else item) for key, item in config))


def _values(data: dict[str, Any], key: str, default: float) -> float | tuple[float, ...]:
    """``[data]``'s ``scale`` or ``center``: a number, or a list of one per feature."""
    value = data.get(key, default)
    if isinstance(value, list):
        return tuple(float(each) for each in value)
    return float(value)


def _check_preparation(data: DataSpec) -> None:
    """What ``scale``, ``center`` and ``validation_split`` must be, said as the spec writes them."""
    axis = data.image_shape[-1] if len(data.image_shape) in (1, 3) else None
    for key in ("scale", "center"):
        value = getattr(data, key)
        values = value if isinstance(value, tuple) else (value,)
        if not all(math.isfinite(each) for each in values):
            raise ValueError(f"[data] {key} holds a value that is not a finite number")
        if key == "scale" and any(each == 0 for each in values):
            raise ValueError("[data] scale holds 0: every value is divided by its scale; give a number other than 0")
        if isinstance(value, tuple) and len(value) != axis:
            where = f"{axis} (one per feature or channel)" if axis else "none: these rows have no features or channels"
            raise ValueError(
                f"[data] {key} lists {len(value)} numbers; rows of shape {list(data.image_shape)} take {where}, "
                "or one number for every value"
            )
    if not 0 <= data.validation_split < 1:
        raise ValueError(
            f"[data] validation_split = {data.validation_split}: the share of the training rows kept for validation, "
            "from 0 (none) to below 1"
        )


def _build_spec(path: Path, raw: dict[str, Any], raw_bytes: bytes, calibration_key: str) -> Spec:
    check_tables(raw)
    exercise = raw["exercise"]
    check_keys("exercise", exercise, "[exercise]")
    data = raw["data"]
    check_keys("data", data, "[data]")
    if "keras_dataset" not in data and "file" not in data:
        raise ValueError("[data] names neither a `keras_dataset` loader nor a data `file` beside the spec")
    task = str(data.get("task", "classification"))
    if task not in TASKS:
        raise ValueError(f"[data] task = {task!r}; known tasks: {', '.join(TASKS)}")
    for key in ("file", "private_test"):
        if key in data and (Path(str(data[key])).name != data[key] or data[key] in (".", "..")):
            raise ValueError(f"[data] {key} = {data[key]!r}: name a file in the spec's own folder, without a path")
    data_spec = DataSpec(
        keras_dataset=str(data.get("keras_dataset", "")),
        url=data.get("url"),
        file_sha256=data.get("file_sha256"),
        image_shape=tuple(int(dim) for dim in data["image_shape"]),
        classes=int(data["classes"]) if task == "classification" else int(data.get("classes", 0)),
        train_samples=int(data["train_samples"]),
        test_samples=int(data["test_samples"]),
        flatten=bool(data.get("flatten", False)),
        scale=_values(data, "scale", 1.0),
        pad=int(data.get("pad", 0)),
        channel_axis=bool(data.get("channel_axis", False)),
        file=str(path.parent / data["file"]) if "file" in data else None,
        task=task,
        center=_values(data, "center", 0.0),
        validation_split=float(data.get("validation_split", 0.0)),
        first_class=int(data.get("first_class", 0)),
        private_test=str(path.parent / data["private_test"]) if "private_test" in data else None,
    )
    _check_preparation(data_spec)
    binary_forms = tuple(str(form) for form in data.get("binary_forms", []))
    if any(form not in ("sigmoid", "softmax") for form in binary_forms) or (binary_forms and data_spec.classes != 2):
        raise ValueError(
            f'[data] binary_forms = {list(binary_forms)}: a classifier of 2 classes may list "sigmoid" (one sigmoid '
            'unit, binary cross-entropy) and "softmax" (two softmax units, categorical cross-entropy)'
        )
    defaults = raw.get("defaults", {})
    check_keys("defaults", defaults, "[defaults]")
    points = raw["points"]
    check_keys("points", points, "[points]")
    accuracy_section = raw.get("accuracy", {})
    check_keys("accuracy", accuracy_section, "[accuracy]")
    calibration_path = path.parent / accuracy_section["calibration"] if "calibration" in accuracy_section else None
    calibration = read_calibration(calibration_path, calibration_key) if calibration_path else Calibration()
    digest = hashlib.sha256(raw_bytes)
    if calibration_path is not None and calibration_path.is_file():
        digest.update(calibration_path.read_bytes())

    models = []
    for entry in raw["models"]:
        settings = {**defaults, **entry}
        name = str(settings["name"])
        check_keys("models", entry, f"[[models]] {name}")
        kind = settings.get("kind", "fixed")
        if kind not in MODEL_KINDS:
            raise ValueError(f"{name} has kind {kind!r}; known kinds: {', '.join(MODEL_KINDS)}")
        improvement = kind == "improvement"
        if improvement and task == "regression":
            raise ValueError(f"{name} is an improvement of a regression, which is not graded yet: make it fixed")
        models.append(
            ModelSpec(
                name=name,
                kind=kind,
                layers=()
                if improvement
                else with_inputs_checked(tuple(_layer(name, layer) for layer in settings["layers"])),
                params=None if improvement else int(settings["params"]),
                optimizer=str(settings["optimizer"]),
                learning_rate=_initial_rate(name, settings["learning_rate"]),
                losses=tuple(
                    str(loss) for loss in (settings["losses"] if "losses" in settings else [settings["loss"]])
                ),
                # An improvement's training is its own: these are the exercise's, not checked.
                batch_size=int(settings.get("batch_size", 0) if improvement else settings["batch_size"]),
                epochs=int(settings.get("epochs", 0) if improvement else settings["epochs"]),
                accuracy=_accuracy_range(name, settings, accuracy_section, calibration, data_spec.metric),
                points={kind: float(points[kind]) for kind in CHECK_KINDS if kind in points},
                baseline=str(settings["baseline"]) if improvement else None,
                max_params=int(settings["max_params"]) if "max_params" in settings else None,
                metric=data_spec.metric,
                binary_forms=binary_forms,
                schedule=_schedule(name, settings["learning_rate"]),
            )
        )
    names = [model.name for model in models]
    for model in models:
        if model.kind == "improvement" and model.baseline not in names:
            raise ValueError(f"{model.name}'s baseline {model.baseline!r} is not a model of the spec ({names})")
    if not models:
        raise ValueError("the spec defines no [[models]]")
    solution = exercise.get("solution")
    handout = exercise.get("handout")
    return Spec(
        path=path,
        name=str(exercise["name"]),
        solution=path.parent / solution if solution else None,
        data=data_spec,
        models=tuple(models),
        digest=digest.hexdigest()[:16],
        _calibration_path=calibration_path,
        calibration=calibration,
        handout=path.parent / handout if handout else None,
        questions=read_questions(raw.get("questions", []), names),
    )


def _layer(model: str, entry: dict[str, Any]) -> Layer:
    unknown = set(entry) - LAYER_KEYS
    if unknown:
        raise ValueError(f"a layer of {model} has unknown keys {sorted(unknown)}; known: {sorted(LAYER_KEYS)}")
    return Layer.from_dict(entry)


def _accuracy_range(
    name: str, settings: dict[str, Any], section: dict[str, Any], calibration: Calibration, metric: Metric = ACCURACY
) -> AccuracyRange | None:
    """A fixed model's range: set by hand, or its calibration runs widened by the margin. An
    improvement's: from its ``min_accuracy``, else its baseline's range, up to 1."""
    explicit = settings.get("accuracy")
    if explicit is not None:
        return AccuracyRange(float(explicit["min"]), float(explicit["max"]), "set by hand in the spec")
    if settings.get("kind") == "improvement":
        if "min_accuracy" in settings:
            return AccuracyRange(float(settings["min_accuracy"]), 1.0, "the spec's min_accuracy")
        baseline = _accuracy_range(settings["baseline"], {}, section, calibration)
        if baseline is None:
            return None
        return AccuracyRange(baseline.min, 1.0, f"{settings['baseline']}'s lowest accepted accuracy")
    runs = calibration.models[name].test_accuracies if name in calibration.models else ()
    if not runs:
        return None
    low, high = min(runs), max(runs)
    # A figure, or a share of the highest run (a regression's error has the scale of its targets)
    margin = float(section.get("margin", 0.0))
    if "relative_margin" in section:
        margin = float(section["relative_margin"]) * high
    ceiling = 1.0 if metric.higher_is_better else math.inf  # an accuracy, or an error
    return AccuracyRange(
        min=round(max(0.0, low - margin), 4),
        max=round(min(ceiling, high + margin), 4),
        derivation=f"{len(runs)} calibration runs on {calibration.key} gave {low:.4f} to {high:.4f}, "
        f"widened by {margin:.4g} each side",
    )
