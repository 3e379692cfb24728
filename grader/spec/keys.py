"""Every key a spec may hold, with its default and what it means: the one table the loader
checks a spec against (a key not in it is refused, naming the known ones) and the
documentation's reference of the spec's keys is generated from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The spec's top-level tables; rubric items sit in [[questions]].
TABLES = ("exercise", "data", "defaults", "points", "accuracy", "models", "questions")
# Each section's title, as a spec writes it, in the order the reference lists them.
SECTIONS = {
    "exercise": "[exercise]",
    "data": "[data]",
    "defaults": "[defaults]",
    "points": "[points]",
    "accuracy": "[accuracy]",
    "models": "[[models]]",
    "questions": "[[questions]]",
    "rubric": "[[questions]] rubric items",
}


@dataclass(frozen=True)
class SpecKey:
    """One key of a section; ``default``: what it is when left out, as a spec would write it
    (None: the key is required, or needed only where its meaning says)."""

    section: str
    name: str
    meaning: str
    default: str | None = None


SPEC_KEYS: tuple[SpecKey, ...] = (
    SpecKey("exercise", "name", "The exercise's title, on every report."),
    SpecKey("exercise", "solution", "The model solution notebook, beside the spec; it must grade full marks."),
    SpecKey("exercise", "handout", "The notebook students start from, beside the spec."),
    SpecKey(
        "data",
        "task",
        "`classification` (integer classes; the accuracy is measured) or `regression` (a number per row; the "
        "mean absolute error is measured, and no `classes`).",
        '"classification"',
    ),
    SpecKey(
        "data",
        "keras_dataset",
        "The `keras.datasets` loader notebooks call (`mnist`, `fashion_mnist`, ...): the grader serves its "
        "arrays to `keras.datasets.<name>.load_data()`, offline. A spec names a loader, a `file`, or both.",
    ),
    SpecKey(
        "data",
        "file",
        "An `.npz` file in Keras' layout (`x_train`, `y_train`, `x_test`, `y_test`) beside the spec, placed "
        "read-only in each notebook's folder under its name.",
    ),
    SpecKey(
        "data",
        "private_test",
        "A private test set beside the spec (`x_test`, `y_test` in an `.npz`), never placed where a notebook runs: "
        "the evaluator measures each model, and `grader calibrate` the reference runs, on it instead of the data "
        "set's own test rows. It protects only if students cannot obtain those rows (MNIST's own test set can be "
        "embedded in a notebook).",
    ),
    SpecKey("data", "url", "A loader's: where Keras downloads it from, for a grader that may download it."),
    SpecKey(
        "data",
        "file_sha256",
        "The data file's sha256: a loader's download is checked against it; a `file` is checked before every grading.",
    ),
    SpecKey("data", "image_shape", "The shape of one row as the data set holds it, e.g. `[28, 28]`; checked on load."),
    SpecKey("data", "classes", "How many classes a classification has; checked on load."),
    SpecKey(
        "data",
        "first_class",
        "The label of the first class in the data file: `1` where classes are counted from 1, as some data sets "
        "do (a model's outputs count from 0: notebooks subtract it). Labels may be integers or one-hot rows.",
        "0",
    ),
    SpecKey(
        "data",
        "binary_forms",
        'A classifier of 2 classes: the output forms that are the same exercise, `"sigmoid"` (one sigmoid unit, '
        'binary cross-entropy) and `"softmax"` (two softmax units, categorical or sparse cross-entropy). A model '
        "in the other form is checked against the spec's model in that form (its output layer, parameters, loss).",
        "[] (the spec's form only)",
    ),
    SpecKey("data", "train_samples", "Training rows; checked on load."),
    SpecKey("data", "test_samples", "Test rows; checked on load."),
    SpecKey(
        "data",
        "scale",
        "The exercise's preparation: rows become `(x - center) / scale`. A number for every value, or a list of "
        "one per feature (rows of features) or per channel (colour images): a standardisation, a min-max scaler.",
        "1",
    ),
    SpecKey(
        "data", "center", "The exercise's preparation: subtracted before dividing by `scale`; a number or a list.", "0"
    ),
    SpecKey(
        "data",
        "validation_split",
        "The share of the training rows the exercise keeps for validation (Keras' `validation_split`, or a split "
        "made by hand); a model is trained on the rest. Validating on the test set keeps none.",
        "0",
    ),
    SpecKey("data", "flatten", "The exercise's preparation: rows are flattened.", "false"),
    SpecKey("data", "pad", "The exercise's preparation: images are padded by this many pixels on every side.", "0"),
    SpecKey("data", "channel_axis", "The exercise's preparation: images get a channel axis.", "false"),
    SpecKey("defaults", "(any key of `[[models]]`)", "Shared by every model unless it sets its own."),
    SpecKey("points", "architecture", "Points for a model's layers; a check not listed is not run."),
    SpecKey("points", "params", "Points for a model's parameter count."),
    SpecKey("points", "optimizer", "Points for its optimizer, learning rate and loss."),
    SpecKey("points", "training", "Points for its training: batch size, epochs, on the training rows only."),
    SpecKey("points", "accuracy", "Points for the test accuracy the grader measures (a regression's error)."),
    SpecKey("accuracy", "calibration", "The calibration file beside the spec (`grader calibrate` writes it)."),
    SpecKey(
        "accuracy",
        "margin",
        "How far each model's range extends beyond its calibration runs, on each side.",
        "0",
    ),
    SpecKey(
        "accuracy",
        "relative_margin",
        "Instead of `margin`: a share of the highest run (a regression's error has the scale of its targets).",
    ),
    SpecKey("models", "name", "The notebook's variable, and the prefix of the model's check ids."),
    SpecKey(
        "models",
        "kind",
        '`fixed`: these layers, trained so; `improvement`: an open answer to "suggest an improvement".',
        '"fixed"',
    ),
    SpecKey(
        "models",
        "layers",
        "A fixed model's layers, each `{ type = ..., option = ... }` of the layer registry; `inputs`: where a "
        "layer of a Functional model that is not a chain takes its inputs.",
    ),
    SpecKey("models", "params", "A fixed model's parameter count."),
    SpecKey("models", "optimizer", "The optimizer it is compiled with, as Keras names it (`rmsprop`)."),
    SpecKey(
        "models",
        "learning_rate",
        "The optimizer's learning rate: a number, or a Keras schedule as a table in Keras' own names, "
        '`{ schedule = "ExponentialDecay", initial_learning_rate = 0.01, decay_steps = 1000, decay_rate = 0.9 }` '
        "(checked by its class and those values).",
    ),
    SpecKey("models", "loss", "The loss it is compiled with."),
    SpecKey(
        "models",
        "losses",
        "Instead of `loss`: every loss accepted (say, also `sparse_categorical_crossentropy` for integer labels).",
    ),
    SpecKey("models", "batch_size", "The batch size of its training (an improvement's own is not checked)."),
    SpecKey("models", "epochs", "The epochs of its training (an improvement's own are not checked)."),
    SpecKey("models", "accuracy", "A range `{ min, max }` set by hand instead of the calibration's."),
    SpecKey("models", "baseline", "An improvement's: the fixed model it is compared with."),
    SpecKey(
        "models",
        "min_accuracy",
        "An improvement's lowest accepted accuracy [default: the lowest of its baseline's range].",
    ),
    SpecKey("models", "max_params", "An improvement's parameter budget."),
    SpecKey("questions", "id", "The question's id, in the gradebooks and the review."),
    SpecKey("questions", "title", "Its title."),
    SpecKey("questions", "points", "Its points, added to the code's; graded by hand (`grader review`)."),
    SpecKey("questions", "prompt", "How the handout asks it: the text its answer is found after."),
    SpecKey("questions", "also_asked_as", "How course variants word it.", "[]"),
    SpecKey(
        "questions",
        "cues",
        "Words (or stems: `prefer`, `escolh`) an answer to it uses, in the languages the class writes in: where "
        "answers to several questions share one paragraph, each sentence goes to the question whose words it has.",
        "[]",
    ),
    SpecKey(
        "questions",
        "scoring",
        "`positive`: from 0 up; `negative`: from `points` down; within 0 and `points` either way.",
        '"positive"',
    ),
    SpecKey("questions", "rubric", "Its rubric: a list of items (below)."),
    SpecKey("questions", "models", "The models whose measurements the review shows beside each answer.", "[]"),
    SpecKey("questions", "curves", "Whether the review shows those models' learning curves too.", "false"),
    SpecKey(
        "questions",
        "stance",
        "What answers are grouped by: `preferred_model` (which of `models` the answer prefers) or `improved` "
        "(whether it says the first of `models` improved on the second, set against the measurement).",
    ),
    SpecKey("rubric", "title", "The item's title."),
    SpecKey("rubric", "points", "Points an item applied adds (negative ones take away)."),
    SpecKey("rubric", "description", "What the item means, for the one grading.", '""'),
    SpecKey(
        "rubric",
        "id",
        "Its id [default: the title in lower case, with dashes; give one, or editing the title makes a new item].",
    ),
)


def keys_of(section: str) -> frozenset[str]:
    """The keys ``section`` may hold; ``[defaults]`` holds those of ``[[models]]``."""
    section = "models" if section == "defaults" else section
    return frozenset(key.name for key in SPEC_KEYS if key.section == section)


def check_tables(spec: Iterable[str]) -> None:
    """Raise ``ValueError`` naming the top-level tables of ``spec`` a spec does not have."""
    unknown = sorted(set(spec) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown tables {unknown}; known: {sorted(TABLES)}")


def check_keys(section: str, entry: Iterable[str], where: str) -> None:
    """Raise ``ValueError`` naming the keys of ``entry`` that ``section`` does not know (a typo
    would otherwise be ignored, and its default used), and the keys it knows."""
    unknown = sorted(set(entry) - keys_of(section))
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; known: {sorted(keys_of(section))}")


def keys_markdown() -> str:
    """The reference of every key, a Markdown table per section, for the documentation."""
    parts = []
    for section, title in SECTIONS.items():
        parts += [f"## `{title}`", "", "| key | default | meaning |", "|---|---|---|"]
        for key in SPEC_KEYS:
            if key.section == section:
                name = key.name if key.name.startswith("(") else f"`{key.name}`"
                default = f"`{key.default}`" if key.default is not None else ""
                parts.append(f"| {name} | {default} | {key.meaning} |")
        parts.append("")
    return "\n".join(parts)
