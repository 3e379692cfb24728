"""The spec ``grader new`` writes: what the solution's run showed (its trained models, how it
prepared its inputs, its data), as plain data, and that data written as a commented TOML spec.
No TensorFlow."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined

from grader.assign.data_source import DataSource
from grader.errors import SpecError
from grader.judge.facts import ModelFacts
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
    # The inputs' preparation, in the spec's terms, and how it was found
    flatten: bool
    scale: float
    pad: int
    channel_axis: bool
    preparation: str
    models: tuple[DraftModel, ...]
    # What the instructor should look at before grading with the spec
    review: tuple[str, ...]


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
    """The ``[data]`` keys that prepare the images as ``derived`` does (flatten, scale, pad,
    channel_axis), and what the instructor should review about them."""
    notes = []
    if derived is None:
        notes.append(
            "how the solution prepared its inputs could not be derived from what its fit received: "
            "set `scale` (the value that divides each pixel) by hand"
        )
        derived = Preprocessing(scale=1.0, offset=0.0, shape=tuple(input_shape))
    elif derived.offset:
        notes.append(f"the solution shifts its inputs ({derived.describe()}); the spec states a scale only")
    scale = float(f"{1 / derived.scale:.6g}") if derived.scale else 1.0
    if len(image_shape) == 1:  # rows of features or tokens: nothing to flatten or pad
        padded: tuple[int, ...] = image_shape
    else:
        padded = (image_shape[0] + 2 * derived.pad, image_shape[1] + 2 * derived.pad, *image_shape[2:])
    keys = {
        "flatten": len(derived.shape) == 1 and len(image_shape) > 1,
        "scale": scale,
        "pad": derived.pad,
        "channel_axis": tuple(derived.shape) == (*padded, 1),
    }
    if len(derived.shape) != 1 and tuple(derived.shape) not in (padded, (*padded, 1)):
        notes.append(f"the solution shapes its inputs {derived.shape}, which the spec cannot state")
    return keys, notes


def label_classes(labels: np.ndarray, what: str) -> int:
    """The number of classes of integer ``labels`` (0 to K-1); ``SpecError`` otherwise."""
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or not len(labels) or labels.min() < 0:
        raise SpecError(
            f"{what} has shape {labels.shape} and dtype {labels.dtype}; the grader needs one integer class "
            "per row (0 to K-1), not one-hot rows: store the labels so in the data file."
        )
    return int(labels.max()) + 1


def render_spec(draft: ExerciseDraft) -> str:
    """The TOML spec of ``draft``, commented for the instructor who reviews it."""
    return _templates.get_template("spec.toml.j2").render(draft=draft)


def toml_value(value: Any) -> str:
    """``value`` (text, number, truth, list, table) as a TOML value; tables inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no TOML spelling here")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    raise TypeError(f"no TOML spelling for {type(value).__name__}")


# TOML, not HTML: no autoescaping; every value is written by the `toml` filter.
_templates = Environment(
    loader=PackageLoader("grader.assign", "templates"),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
    autoescape=False,
)
_templates.filters |= {
    "toml": toml_value,
    # A note may hold what Keras printed, newlines and all: one comment line each
    "comment": lambda text: " ".join(str(text).split()),
    "thousands": lambda number: f"{number:,}",
    "spec_layer": spec_layer,
}
