"""The spec ``grader new`` writes: what the solution's run showed (its trained models, how it
prepared its inputs, its data), as plain data, and that data written as a commented TOML spec.
No TensorFlow."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
import tomlkit
import tomlkit.items

from grader.assign.data_source import DataSource
from grader.errors import SpecError
from grader.judge.facts import ModelFacts
from grader.protocol.text import name_text
from grader.spec.exercise import Schedule
from grader.spec.layers import Layer
from grader.spec.preprocessing import Preprocessing

# The losses of a classifier over several classes, one-hot or integer labels; of a binary one.
CLASSIFIER_LOSSES = ("categorical_crossentropy", "sparse_categorical_crossentropy")
BINARY_LOSS = "binary_crossentropy"
# The losses of a regression (one number per row, from one linear unit)
REGRESSION_LOSSES = ("mean_squared_error", "mse", "mean_absolute_error", "mae", "huber", "log_cosh")


@dataclass(frozen=True)
class DraftModel:
    """A model the solution trained, as the spec states a fixed model."""

    name: str
    layers: tuple[Layer, ...]
    params: int
    optimizer: str
    learning_rate: float
    loss: str
    batch_size: int
    epochs: int
    # The learning rate's schedule (``learning_rate`` is then its initial rate)
    schedule: Schedule | None = None

    @property
    def losses(self) -> tuple[str, ...]:
        """The losses the spec accepts: the solution's, and the same loss for the other form of
        labels (one-hot rows or integer classes are the same exercise)."""
        other = {"categorical_crossentropy": "sparse_categorical_crossentropy"}
        other |= {sparse: categorical for categorical, sparse in other.items()}
        return (self.loss, other[self.loss]) if self.loss in other else (self.loss,)


@dataclass(frozen=True)
class ExerciseDraft:
    name: str
    solution: str
    handout: str
    calibration: str
    source: DataSource
    data_sha256: str
    image_shape: tuple[int, ...]
    classes: int
    train_samples: int
    test_samples: int
    margin: float
    # "classification" or "regression"; a regression's margin is a share of its worst run's error
    task: str
    # The inputs' preparation, in the spec's terms (``(x - center) / scale``, a number or one per
    # feature or channel), and how it was found
    flatten: bool
    scale: float | tuple[float, ...]
    pad: int
    channel_axis: bool
    preparation: str
    models: tuple[DraftModel, ...]
    # What the instructor should look at before grading with the spec
    review: tuple[str, ...]
    center: float | tuple[float, ...] = 0.0
    # The share of the training rows the solution kept for validation
    validation_split: float = 0.0
    # The first class's label in the data file (1 where classes count from 1)
    first_class: int = 0
    # A classifier of two classes: its output's forms that are the same exercise, its own first
    binary_forms: tuple[str, ...] = ()
    # The private test set beside the spec (its file name), held back from the data file
    private_test: str | None = None


def draft_model(model: ModelFacts) -> DraftModel:
    """``model`` as a fixed model of a spec; ``SpecError`` when its run does not say enough
    (a model the grader cannot read, no compile, no fit) or it is not a classifier."""
    name = model.name
    if model.architecture is None:
        raise SpecError(f"the solution's model {name} cannot be read: {model.problem}")
    params = model.architecture.param_count()
    fit = model.fits[-1] if model.fits else None
    if model.compile is None or fit is None or params is None:
        raise SpecError(f"the solution's model {name} was not compiled and trained: `grader new` reads both")
    loss = model.compile.loss
    if task_of(model) is None:
        raise SpecError(
            f"{name} is trained with the loss {loss!r}; `grader new` writes specs of classifiers over several "
            f"classes ({' or '.join(CLASSIFIER_LOSSES)}, a softmax output) or two ({BINARY_LOSS}, one sigmoid unit), "
            f"and of regressions ({', '.join(REGRESSION_LOSSES)}, one linear unit)"
        )
    unknown = [what for what, value in (("optimizer", model.compile.optimizer), ("batch size", fit.batch_size),
                                        ("epochs", fit.epochs_run)) if value is None]  # fmt: skip
    if unknown:
        raise SpecError(f"the solution's run of {name} does not show its {', '.join(unknown)}")
    return DraftModel(
        name=name,
        layers=model.architecture.layers,
        params=params,
        optimizer=str(model.compile.optimizer),
        learning_rate=round(model.compile.learning_rate or 0.001, 8),
        loss=str(loss),
        batch_size=int(fit.batch_size or 0),
        epochs=sum(int(each.epochs_run or 0) for each in model.fits),
        schedule=model.compile.schedule,
    )


def task_of(model: ModelFacts) -> str | None:
    """ "classification" or "regression", as ``model``'s loss and output say; None if neither."""
    loss = model.compile.loss if model.compile else None
    last = model.architecture.layers[-1] if model.architecture and model.architecture.layers else None
    output = (last.units, last.activation) if last is not None and last.type == "Dense" else None
    if loss in CLASSIFIER_LOSSES or (loss == BINARY_LOSS and output == (1, "sigmoid")):
        return "classification"
    if loss in REGRESSION_LOSSES and output == (1, "linear"):
        return "regression"
    return None


def spec_layer(layer: Layer) -> dict[str, Any]:
    """``layer`` as a spec writes it: its type and the options that differ from what the spec
    would assume without them (``{type = "Dense", units = 32, activation = "relu"}``)."""
    written = layer.to_dict()
    for key in [key for key in written if key != "type"]:
        shorter = {name: value for name, value in written.items() if name != key}
        try:
            if Layer.from_dict(shorter) == layer:
                written = shorter
        except (TypeError, ValueError):  # an option the layer cannot do without
            continue
    return written


# The longest comment line the spec is written with
COMMENT_WIDTH = 100
# A regression's accepted error: up to a tenth above the worst calibration run's
RELATIVE_MARGIN = 0.1


def accuracy_margin(test_rows: int) -> float:
    """How far outside its calibration runs a model's test accuracy may fall: 0.01 on MNIST's
    10,000 test images, more on a small test set, where one image weighs more: twice the
    standard error of an accuracy of 0.9 measured on ``test_rows`` images, in steps of 0.005."""
    return max(0.01, math.ceil(2 * math.sqrt(0.9 * 0.1 / test_rows) * 200) / 200)


def spec_preparation(
    derived: Preprocessing | None, image_shape: tuple[int, ...], input_shape: tuple[int, ...]
) -> tuple[dict[str, Any], list[str]]:
    """The ``[data]`` keys that prepare the rows as ``derived`` does (flatten, scale, center,
    pad, channel_axis), and what the instructor should review about them."""
    notes = []
    if derived is None:
        notes.append(
            "how the solution prepared its inputs could not be derived from what its fit received: "
            "set `center` and `scale` (rows become (x - center) / scale) by hand"
        )
        derived = Preprocessing(scale=1.0, offset=0.0, shape=tuple(input_shape))
    if len(image_shape) == 1:  # rows of features or tokens: nothing to flatten or pad
        padded: tuple[int, ...] = image_shape
    else:
        padded = (image_shape[0] + 2 * derived.pad, image_shape[1] + 2 * derived.pad, *image_shape[2:])
    keys = {
        "flatten": len(derived.shape) == 1 and len(image_shape) > 1,
        **_center_and_scale(derived),
        "pad": derived.pad,
        "channel_axis": tuple(derived.shape) == (*padded, 1),
    }
    if len(derived.shape) != 1 and tuple(derived.shape) not in (padded, (*padded, 1)):
        notes.append(f"the solution shapes its inputs {derived.shape}, which the spec cannot state")
    return keys, notes


def _center_and_scale(derived: Preprocessing) -> dict[str, float | tuple[float, ...]]:
    """``derived``'s map of values as the spec writes it, ``(x - center) / scale``: a number
    each, or one per feature (or channel), to float32's seven significant digits."""
    if derived.feature_scale:
        maps = [
            (scale * derived.scale, offset * derived.scale + derived.offset)
            for scale, offset in zip(derived.feature_scale, derived.feature_offset, strict=True)
        ]
        return {"center": tuple(_digits(-b / a) for a, b in maps), "scale": tuple(_digits(1 / a) for a, _ in maps)}
    if not derived.scale:
        return {"center": 0.0, "scale": 1.0}
    return {"center": _digits(-derived.offset / derived.scale), "scale": _digits(1 / derived.scale)}


def _digits(value: float) -> float:
    """``value`` to seven significant digits (what a float32 holds), ``-0.0`` as 0."""
    return float(f"{value:.7g}") + 0.0


def label_classes(labels: np.ndarray, what: str, outputs: int | None) -> tuple[int, int]:
    """How many classes ``labels`` (a data file's, one-hot rows already read as their class)
    name, and the first one's label: 0, or 1 where the classes count from 1 and the solution's
    model has one output per class and not one more (its notebook subtracts 1). ``SpecError``
    for labels that are not integer classes."""
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or not len(labels) or labels.min() < 0:
        raise SpecError(
            f"{what} has shape {labels.shape} and dtype {labels.dtype}; the grader needs one integer class per row "
            "(counted from 0 or 1) or one-hot rows: store the labels so in the data file."
        )
    highest = int(labels.max())
    if int(labels.min()) == 1 and outputs == highest:
        return highest, 1
    return highest + 1, 0


def binary_forms(classes: int, model: DraftModel) -> tuple[str, ...]:
    """Both forms of a classifier of two classes, the one ``model`` ends in first; none for
    another model."""
    last = model.layers[-1] if model.layers else None
    output = (last.type, last.units, last.activation) if last is not None else None
    own = {("Dense", 1, "sigmoid"): "sigmoid", ("Dense", 2, "softmax"): "softmax"}.get(output)  # type: ignore[arg-type]
    if classes != 2 or own is None:
        return ()
    return (own, "softmax" if own == "sigmoid" else "sigmoid")


def render_spec(draft: ExerciseDraft) -> str:
    """The TOML spec of ``draft``, commented for the instructor who reviews it, written by
    tomlkit (every value escaped as TOML wants it; comments kept when the spec is edited)."""
    spec = tomlkit.document()
    header = [
        f"Spec of the exercise {draft.name!r}, written by `grader new` from {draft.solution}.",
        "Review it before grading with it (`grader validate` checks it end to end):",
        *(f"- {note}" for note in draft.review),
    ]
    for line in header:
        for comment in _comments(line):
            spec.add(comment)
    spec.add(tomlkit.nl())
    spec.add("exercise", _exercise_table(draft))
    spec.add("data", _data_table(draft))
    spec.add("points", _points_table(draft))
    spec.add("accuracy", _accuracy_table(draft))
    models = tomlkit.aot()
    for model in draft.models:
        models.append(_model_table(model, draft.task))
    if draft.models:
        spec.add("models", models)
    return str(tomlkit.dumps(spec))


def _comments(text: str) -> list[tomlkit.items.Comment]:
    """``text`` (which may hold what Keras printed, newlines and control characters) as comment
    lines of at most ``COMMENT_WIDTH`` characters."""
    return [
        tomlkit.comment(line)
        for line in textwrap.wrap(name_text(" ".join(str(text).split())), COMMENT_WIDTH, break_on_hyphens=False)
    ]


def _table(*entries: tuple[str, Any] | str) -> tomlkit.items.Table:
    """A table of ``(key, value)`` entries, a string entry being a comment before the next."""
    table = tomlkit.table()
    for entry in entries:
        if isinstance(entry, str):
            for comment in _comments(entry):
                table.add(comment)
        else:
            table.add(*entry)
    return table


def _exercise_table(draft: ExerciseDraft) -> tomlkit.items.Table:
    return _table(
        ("name", draft.name),
        "The model solution, which must grade full marks.",
        ("solution", draft.solution),
        "The notebook students start from: the solution without its solution regions.",
        ("handout", draft.handout),
    )


def _data_table(draft: ExerciseDraft) -> tomlkit.items.Table:
    entries: list[tuple[str, Any] | str] = []
    source = draft.source
    if source.keras_dataset:
        entries += [
            f"The grader serves these arrays to keras.datasets.{source.keras_dataset}.load_data(), offline.",
            ("keras_dataset", source.keras_dataset),
        ]
        if source.url:
            entries.append(("url", source.url))
    if source.file:
        entries += [
            "The data file beside this spec, in Keras' layout (x_train, y_train, x_test, y_test). It is placed "
            f"read-only in the folder every notebook runs in, so np.load({source.file.name!r}) works.",
            ("file", source.file.name),
        ]
    entries += [("file_sha256", draft.data_sha256), ("image_shape", list(draft.image_shape))]
    if draft.task == "regression":
        entries += ["A number per row: each model's test mean absolute error is measured, and lower is better."]
        entries += [("task", "regression")]
    else:
        entries.append(("classes", draft.classes))
        if draft.binary_forms:
            entries += [
                "Two classes: one sigmoid unit (binary cross-entropy) or two softmax units (categorical or sparse "
                "cross-entropy) are the same exercise; a model in the other form is checked in that form.",
                ("binary_forms", list(draft.binary_forms)),
            ]
        if draft.first_class:
            entries += [
                f"The data file counts its classes from {draft.first_class}; the solution's model from 0.",
                ("first_class", draft.first_class),
            ]
    entries += [("train_samples", draft.train_samples), ("test_samples", draft.test_samples)]
    if draft.private_test:
        entries += [
            f"Test rows held back from the data file students get: each model is measured on them. Keep "
            f"{draft.private_test} away from students.",
            ("private_test", draft.private_test),
        ]
    entries += [
        "How the solution prepared its inputs, as the grader derived it from the rows its fit received "
        f"({draft.preparation}): rows become (x - center) / scale, then are shaped. Each notebook's own "
        "preparation is derived the same way; this one prepares the exercise's own model's test rows.",
        ("flatten", draft.flatten),
        ("center", _numbers(draft.center)),
        ("scale", _numbers(draft.scale)),
    ]
    if draft.pad:
        entries.append(("pad", draft.pad))
    if draft.channel_axis:
        entries.append(("channel_axis", True))
    if draft.validation_split:
        entries += [
            f"The solution kept {draft.validation_split:g} of the training rows for validation: a model is trained "
            "on the rest (Keras' validation_split, or a split by hand), or on all of them.",
            ("validation_split", draft.validation_split),
        ]
    return _table(*entries)


def _numbers(value: float | tuple[float, ...]) -> float | tomlkit.items.Array:
    """A number, or a list of one per feature, a few to a line."""
    if not isinstance(value, tuple):
        return value
    numbers = tomlkit.array()
    numbers.extend(value)
    return numbers.multiline(len(value) > 8)


def _points_table(draft: ExerciseDraft) -> tomlkit.items.Table:
    measured = "`accuracy` names the check of what the grader measures: here the test mean absolute error."
    return _table(
        *([measured] if draft.task == "regression" else []),
        ("architecture", 2),
        ("params", 1),
        ("optimizer", 1),
        ("training", 1),
        ("accuracy", 3),
    )


def _accuracy_table(draft: ExerciseDraft) -> tomlkit.items.Table:
    if draft.task == "regression":
        return _table(
            "Each model's accepted range: the test mean absolute errors of `grader calibrate`'s seeded runs of the "
            "model (stored in `calibration`), widened on each side by `relative_margin` times the highest of them; "
            "an error at most the range's top passes.",
            ("calibration", draft.calibration),
            ("relative_margin", draft.margin),
        )
    return _table(
        "Each model's accuracy range: the test accuracies of `grader calibrate`'s seeded runs of the model (stored "
        f"in `calibration`), widened by `margin` on each side ({draft.test_samples:,} test rows: one is "
        f"{1 / draft.test_samples:.4f} of accuracy).",
        ("calibration", draft.calibration),
        ("margin", draft.margin),
    )


def _learning_rate(model: DraftModel) -> list[tuple[str, Any] | str]:
    """``learning_rate``: a number, or the schedule the solution's optimizer followed."""
    if model.schedule is None:
        return [("learning_rate", model.learning_rate)]
    table = tomlkit.inline_table()
    table.update({"schedule": model.schedule.class_name, **dict(model.schedule.config)})
    return ["The learning rate follows a Keras schedule, in its own names.", ("learning_rate", table)]


def _model_table(model: DraftModel, task: str) -> tomlkit.items.Table:
    layers = tomlkit.array()
    for layer in model.layers:
        inline = tomlkit.inline_table()
        inline.update(spec_layer(layer))
        layers.append(inline)
    losses: list[tuple[str, Any] | str] = [("loss", model.loss)]
    if len(model.losses) > 1:
        losses = [
            "The solution's loss first; the other takes the labels in the other form.",
            ("losses", list(model.losses)),
        ]
    return _table(
        f"{model.name}: {model.params:,} parameters, as the solution built and trained it.",
        *(['An open model ("suggest an improvement") is `kind = "improvement"` with a `baseline`.']
          if task == "classification" else []),
        ("name", model.name),
        ("params", model.params),
        ("optimizer", model.optimizer),
        *_learning_rate(model),
        *losses,
        ("batch_size", model.batch_size),
        ("epochs", model.epochs),
        ("layers", layers.multiline(True)),
    )  # fmt: skip
