"""The checks: pure functions of the spec, the kernel's facts and the grader's
own evaluations. Each gives a verdict, the expected and actual values, and a
message that tells a student what to fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from grader.evaluation.evaluate import Evaluation
from grader.evaluation.limits import SAMPLED_FITS
from grader.judge.facts import FitFacts, ModelFacts, described
from grader.spec.exercise import ACCURACY, Metric, ModelSpec, Schedule, Spec
from grader.spec.layers import SHAPE_ONLY, Layer

Status = Literal["pass", "fail", "error", "skipped"]

# Test rows found among a random sample of the rows a fit received before they say anything
# (honest rows near a test row: 5 of 5,000 MNIST images shifted by a pixel, none unchanged;
# docs/figures.md)
MIN_FOUND = 5
# Test images a model may be trained on before it counts as trained on the test set: a
# training image changed by augmentation can, by chance, look like a test image.
TEST_ROWS_TOLERATED = 10
# A validation set is the test set when it holds (almost) all the distinguishable test images.
TEST_SET_SHARE = 0.01


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: Status
    expected: Any
    actual: Any
    message: str
    points: float
    max_points: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_checks(
    spec: Spec,
    models: dict[str, ModelFacts],
    evaluations: dict[str, Evaluation],
    quick: bool,
    missing_hint: str = "",
) -> list[CheckResult]:
    """Every check of every model in the spec, in spec order."""
    results: list[CheckResult] = []
    for model_spec in spec.models:
        facts = models.get(model_spec.name)
        if facts is None:
            results.extend(_missing_model(model_spec, missing_hint, quick))
            continue
        if model_spec.kind == "improvement":
            results.extend(check_improvement(spec, model_spec, facts, evaluations.get(model_spec.name), quick))
            continue
        results.extend(check_built_model(model_spec, facts))
        evaluation = evaluations.get(model_spec.name)
        verdicts = {
            "training": check_training(
                model_spec, facts, spec.data.train_samples, quick, evaluation, spec.data.validation_split
            ),
            "accuracy": check_accuracy(model_spec, facts, evaluation, quick),
        }
        results.extend(_scored_verdicts(model_spec, verdicts))
    return results


Verdict = tuple[Status, Any, Any, str]


def check_built_model(model_spec: ModelSpec, facts: ModelFacts) -> list[CheckResult]:
    """The checks that judge a model as built and compiled, before any training.

    ``grader.check`` runs exactly these in a student's notebook, so a model
    that passes there passes them at grading time.
    """
    if model_spec.kind == "improvement":
        verdicts = {
            "architecture": _improvement_architecture(facts),
            "params": _improvement_params(model_spec, facts),
            "optimizer": _improvement_compile(model_spec, facts),
        }
    else:
        as_built = in_the_form_built(model_spec, facts)
        verdicts = {
            "architecture": check_architecture(as_built, facts),
            "params": check_params(as_built, facts),
            "optimizer": check_optimizer(as_built, facts),
        }
    return _scored_verdicts(model_spec, verdicts)


# A classifier of two classes, as one sigmoid unit or two softmax units, and the losses of each
BINARY_FORMS = {
    "sigmoid": (Layer("Dense", units=1, activation="sigmoid"), ("binary_crossentropy",)),
    "softmax": (
        Layer("Dense", units=2, activation="softmax"),
        ("categorical_crossentropy", "sparse_categorical_crossentropy"),
    ),
}


def in_the_form_built(model_spec: ModelSpec, facts: ModelFacts) -> ModelSpec:
    """``model_spec`` in the other form of a classifier of two classes when the spec accepts both
    (``binary_forms``) and the notebook's model ends in that form: its output layer, its
    parameter count (the output layer's difference, counted on the notebook's own model) and
    its losses; else ``model_spec`` as it is."""
    built = facts.architecture
    if len(model_spec.binary_forms) < 2 or built is None or not built.layers or not model_spec.layers:
        return model_spec
    own = next((form for form, (layer, _) in BINARY_FORMS.items() if _output_is(model_spec.layers[-1], layer)), None)
    theirs = next((form for form, (layer, _) in BINARY_FORMS.items() if _output_is(built.layers[-1], layer)), None)
    if own is None or theirs is None or own == theirs or theirs not in model_spec.binary_forms:
        return model_spec
    output, losses = BINARY_FORMS[theirs]
    last = replace(model_spec.layers[-1], units=output.units, activation=output.activation)
    in_own_form = replace(
        built,
        layers=(
            *built.layers[:-1],
            replace(built.layers[-1], units=BINARY_FORMS[own][0].units, activation=BINARY_FORMS[own][0].activation),
        ),
    )
    count, own_count = built.param_count(), in_own_form.param_count()
    params = (
        model_spec.params
        if count is None or own_count is None or model_spec.params is None
        else model_spec.params + count - own_count
    )
    return replace(model_spec, layers=(*model_spec.layers[:-1], last), params=params, losses=losses)


def _output_is(layer: Layer, form: Layer) -> bool:
    return (layer.type, layer.units, layer.activation) == (form.type, form.units, form.activation)


def _scored_verdicts(model_spec: ModelSpec, verdicts: dict[str, Verdict]) -> list[CheckResult]:
    return [_scored(model_spec, kind, *verdict) for kind, verdict in verdicts.items() if kind in model_spec.points]


def _scored(model_spec: ModelSpec, kind: str, status: Status, expected: Any, actual: Any, message: str) -> CheckResult:
    max_points = model_spec.points[kind]
    return CheckResult(
        id=f"{model_spec.name}.{kind}",
        status=status,
        expected=expected,
        actual=actual,
        message=message,
        points=max_points if status == "pass" else 0.0,
        max_points=max_points,
    )


# Checks that need full training; quick mode skips them for every submission,
# so that every quick grade is out of the same points.
FULL_TRAINING_CHECKS = ("accuracy",)


def quick_skip_message(metric: Metric) -> str:
    return f"Quick mode trains for one epoch on a slice: test {metric.name} is checked only in a full run."


def max_points(spec: Spec, quick: bool) -> float:
    """The points a notebook can earn: every check of every model, but those the mode skips."""
    return sum(
        points
        for model in spec.models
        for kind, points in model.points.items()
        if not (quick and kind in FULL_TRAINING_CHECKS)
    )


def checks_not_run(model_spec: ModelSpec, message: str, quick: bool) -> list[CheckResult]:
    """A model's checks when it could not be graded: errors, but skipped where the mode skips them."""
    return [
        _scored(model_spec, kind, "skipped", None, None, quick_skip_message(model_spec.metric))
        if quick and kind in FULL_TRAINING_CHECKS
        else _scored(model_spec, kind, "error", None, None, message)
        for kind in model_spec.points
    ]


def _missing_model(model_spec: ModelSpec, hint: str, quick: bool) -> list[CheckResult]:
    if model_spec.kind == "improvement":
        message = (
            "No improvement was found: no trained model besides the exercise's own. Build and train your "
            "improvement (under any name; mark its cell with # improvement)." + (f" {hint}" if hint else "")
        )
    else:
        message = (
            f"No Keras model named {model_spec.name} was found after running the notebook. "
            f"Build and train it in a variable called {model_spec.name}." + (f" {hint}" if hint else "")
        )
    return checks_not_run(model_spec, message, quick)


def _unreadable(facts: ModelFacts) -> Verdict:
    return (
        "error",
        None,
        None,
        f"{facts.name} could not be read: {facts.problem}. Build it with keras.Sequential or the Functional API "
        "from Dense, Dropout and Activation layers.",
    )


def check_architecture(model_spec: ModelSpec, facts: ModelFacts) -> Verdict:
    wanted = tuple(layer for layer in model_spec.layers if layer.type not in SHAPE_ONLY)
    expected = [layer.describe() for layer in wanted]
    if facts.architecture is None:
        return _unreadable(facts)
    layers = facts.architecture.compared_layers()
    actual = [layer.describe() for layer in layers]
    problems = layer_differences(wanted, layers)
    if not problems:
        return "pass", expected, actual, f"All {len(expected)} layers are as expected."
    listed = "; ".join(problems)
    return "fail", expected, actual, f"In {facts.name}, {listed}. Compare your layers with the expected ones, in order."


def layer_differences(expected: tuple[Layer, ...], actual: tuple[Layer, ...]) -> list[str]:
    """Every position where the layers differ, then what is missing or extra at the end."""
    problems = [
        f"layer {position} should be {want.describe()} but is {have.describe()}"
        for position, (want, have) in enumerate(zip(expected, actual, strict=False), start=1)
        if not have.matches(want)
    ]
    if len(actual) < len(expected):
        missing = ", ".join(layer.describe() for layer in expected[len(actual) :])
        problems.append(f"{missing} missing at the end ({len(actual)} layers, {len(expected)} expected)")
    if len(actual) > len(expected):
        extra = ", ".join(layer.describe() for layer in actual[len(expected) :])
        problems.append(f"{extra} extra at the end ({len(actual)} layers, {len(expected)} expected)")
    return problems


def check_params(model_spec: ModelSpec, facts: ModelFacts) -> Verdict:
    if facts.architecture is None:
        return _unreadable(facts)
    count = facts.architecture.param_count()
    if count is None:
        return (
            "fail",
            model_spec.params,
            None,
            f"{facts.name} has no input shape, so its size is unknown. Give the first layer input_shape=... "
            "or start the model with keras.Input(shape=...).",
        )
    if count == model_spec.params:
        return "pass", model_spec.params, count, f"{count:,} parameters, as expected."
    return (
        "fail",
        model_spec.params,
        count,
        f"{facts.name} has {count:,} parameters, {model_spec.params:,} are expected. Check the number of units in "
        "each Dense layer and the input shape (the images flattened to one vector).",
    )


def _loss_key(name: str | None) -> str:
    """``CategoricalCrossentropy``, ``categorical_crossentropy`` -> one spelling."""
    if name is None:
        return ""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.split(".")[-1]).lower().replace("__", "_")


def check_optimizer(model_spec: ModelSpec, facts: ModelFacts) -> Verdict:
    expected = {"optimizer": model_spec.optimizer, "learning_rate": model_spec.learning_rate, "loss": model_spec.loss}
    compiled = facts.compile
    if compiled is None:
        return "fail", expected, None, f"{facts.name} was never compiled. Call {facts.name}.compile(...) before fit."
    actual = {"optimizer": compiled.optimizer, "learning_rate": compiled.learning_rate, "loss": compiled.loss}
    problems = []
    if (compiled.optimizer or "").lower() != model_spec.optimizer.lower():
        problems.append(f"the optimizer is {compiled.optimizer}, expected {model_spec.optimizer}")
    if model_spec.schedule is not None or compiled.schedule is not None:
        problems.extend(_schedule_problems(model_spec, compiled.schedule))
    elif compiled.learning_rate is None or not math.isclose(
        compiled.learning_rate, model_spec.learning_rate, rel_tol=1e-5
    ):
        problems.append(
            f"the learning rate is {learning_rate_text(compiled.learning_rate)}, expected {model_spec.learning_rate:g}"
        )
    problems.extend(_loss_problem(model_spec, compiled.loss))
    if not problems:
        return "pass", expected, actual, "Optimizer, learning rate and loss are as expected."
    return "fail", expected, actual, f"In {facts.name}.compile(...), {'; '.join(problems)}."


def _schedule_problems(model_spec: ModelSpec, schedule: Schedule | None) -> list[str]:
    """A learning rate that follows a schedule: the same class, and the spec's values of its
    config (numbers to float32's precision); a constant where a schedule is expected, or the
    other way round, is a problem too."""
    wanted = model_spec.schedule
    expected = wanted.describe() if wanted else f"{model_spec.learning_rate:g}"
    if schedule is None:
        return [f"the learning rate is a constant, expected the schedule {expected}"] if wanted else []
    theirs = dict(schedule.config)
    same = wanted is not None and schedule.class_name == wanted.class_name
    if not same or any(not _same_setting(theirs.get(key), value) for key, value in wanted.config):  # type: ignore[union-attr]
        return [f"the learning rate follows the schedule {schedule.describe()}, expected {expected}"]
    return []


def _same_setting(have: float | str | bool | None, want: float | str | bool | None) -> bool:
    if isinstance(have, float) and isinstance(want, float):
        return math.isclose(have, want, rel_tol=1e-5)
    return have == want


def learning_rate_text(value: float | None) -> str:
    """A learning rate as it was written: Keras keeps 0.0015 as the float32 0.001500000013…"""
    return "unknown" if value is None else f"{float(f'{value:.7g}'):g}"


def _loss_problem(model_spec: ModelSpec, loss: str | None) -> list[str]:
    if _loss_key(loss) in {_loss_key(accepted) for accepted in model_spec.losses}:
        return []
    return [f"the loss is {loss}, expected {' or '.join(model_spec.losses)}"]


def _training_rows(fit: FitFacts) -> int | None:
    # Keras holds out the last `validation_split` share of the rows.
    return None if fit.rows is None else math.floor(fit.rows * (1 - fit.validation_split))


def _beyond_the_band(model_spec: ModelSpec, evaluation: Evaluation | None) -> str | None:
    """A fixed model, its layers, optimizer and training those of the spec, that the grader
    measured beyond the best its reference runs reach, margin included (above the range's top
    for an accuracy below 1, under its bottom for an error): no run trained as specified gets
    there, so it was trained on other data. An improvement's is its own."""
    bounds, metric = model_spec.accuracy, model_spec.metric
    if model_spec.kind != "fixed" or bounds is None or evaluation is None or evaluation.test_value is None:
        return None
    limit = bounds.max if metric.higher_is_better else bounds.min
    if (metric.higher_is_better and limit >= 1.0) or not metric.beyond(evaluation.test_value, limit):
        return None
    side = "above" if metric.higher_is_better else "below"
    return (
        f"the grader measured a test {metric.name} of {evaluation.test_value:.4f}, {side} what this model reaches "
        f"trained as specified ({limit:.4f} at {'most' if metric.higher_is_better else 'least'}, its reference runs "
        "widened by the margin): was it trained on other data? Train it on the training set, as the exercise says"
    )


def _trained_rows_as_asked(rows: int | None, train_samples: int, expected_rows: int) -> bool:
    """All the training rows, or those a validation split leaves (a split by hand may round
    the other way: a row either side)."""
    return rows == train_samples or (
        expected_rows != train_samples and rows is not None and abs(rows - expected_rows) <= 1
    )


def check_training(
    model_spec: ModelSpec,
    facts: ModelFacts,
    train_samples: int,
    quick: bool = False,
    evaluation: Evaluation | None = None,
    validation_split: float = 0.0,
) -> Verdict:
    """What the model was trained on and how, judged on what its fits did, not only on what
    they asked: every epoch completed, every batch of each, nothing trained outside ``fit``,
    no test images among the training images of any call or the batches Keras drew, weights
    that its own training produced, and (in full mode, as the grader measured it) no clear
    advantage on the test images over training images. Where the exercise keeps a share of
    the training rows for validation (``validation_split``), a fit on the rows it leaves (by
    Keras' ``validation_split`` or a split by hand, give or take a row of rounding) is as
    right as one on all of them."""
    held_out = validation_split > 0
    expected_rows = math.floor(train_samples * (1 - validation_split) + 1e-9)
    expected = {
        "batch_size": model_spec.batch_size,
        "epochs": model_spec.epochs,
        "train_samples": expected_rows if held_out else train_samples,
    }
    if not facts.fits:
        return (
            "fail",
            expected,
            None,
            f"{facts.name} was never trained. Call {facts.name}.fit(...) on the training set.",
        )
    batch_sizes = sorted({fit.batch_size for fit in facts.fits}, key=str)
    asked = sum(fit.epochs_run or 0 for fit in facts.fits)
    completed = sum(fit.epochs_completed for fit in facts.fits)
    # Quick mode runs one short epoch per fit by design: it judges the epochs asked for.
    epochs = asked if quick else completed
    rows = [_training_rows(fit) for fit in facts.fits]
    outside = facts.steps_outside_fit
    actual = {
        "batch_size": batch_sizes[0] if len(batch_sizes) == 1 else batch_sizes,
        "epochs": epochs,
        "train_samples": rows[-1],
        "test_images": max(facts.test_rows, (_test_rows_sampled(facts, evaluation) or (0,))[0]),
        "steps_outside_fit": outside,
    }
    problems = _integrity_problems(facts, evaluation)
    beyond = _beyond_the_band(model_spec, evaluation)
    if beyond is not None and not problems:
        problems.append(beyond)
    if not problems and not all(_trained_rows_as_asked(row, train_samples, expected_rows) for row in rows):
        if held_out:
            problems.append(
                f"it was trained on {rows[-1]:,} rows, expected the {expected_rows:,} of the {train_samples:,} "
                f"training rows that keeping {validation_split:g} of them for validation leaves (validation_split="
                f"{validation_split:g}, or a split of the training rows by hand), or all of them"
            )
        else:
            problems.append(f"it was trained on {rows[-1]:,} images, expected all {train_samples:,} training images")
    if batch_sizes != [model_spec.batch_size]:
        problems.append(f"the batch size is {actual['batch_size']}, expected {model_spec.batch_size}")
    if epochs != model_spec.epochs:
        problems.append(f"it was trained for {epochs} epochs, expected {model_spec.epochs}")
    problems.extend(_completion_problems(facts))
    if not problems:
        return "pass", expected, actual, "Batch size, epochs and training data are as expected."
    return "fail", expected, actual, f"In {facts.name}.fit(...), {'; '.join(problems)}."


def _integrity_problems(facts: ModelFacts, evaluation: Evaluation | None) -> list[str]:
    """What the model was trained on, as far as it disqualifies the training: weights that its
    training did not produce, test images (seen by their fingerprints, or by what the grader
    measured), or images the grader cannot see."""
    problems = []
    if facts.weight_changes:
        problems.append(
            f"its weights are not all its own training's: {described(facts.weight_changes)}; train it with fit alone, "
            "without putting weights into it"
        )
    test_set = test_set_training(facts, evaluation)
    if test_set is not None:
        problems.append(f"{test_set}; train on the training set only and keep the test set for validation")
    if problems:
        return problems
    if any(fit.rows is None for fit in facts.fits):
        return [
            "fit was not given the training images as an array, so the grader cannot tell what it was "
            "trained on; pass x_train and y_train to fit"
        ]
    return []


def _test_rows_sampled(facts: ModelFacts, evaluation: Evaluation | None) -> tuple[int, int, int, str] | None:
    """The test rows (and near-copies) among the rows its fits received, from those the
    evaluator looked at (each fit's first rows, counted as they are, and rows drawn at random,
    scaled up to the rest): the count over all of them, the rows found, the rows looked at, and
    how the count is meant ("exactly", "about", "at least"); None when none was found, or too
    few to say (``MIN_FOUND`` of the drawn ones) where none of the first rows was one."""
    if evaluation is None:
        return None
    leading_found, leading = evaluation.leading_test_rows or 0, evaluation.leading_rows or 0
    found, drawn = evaluation.sample_test_rows or 0, evaluation.sample_rows or 0
    if not leading_found and not found:
        return None
    received = sum(fit.rows or 0 for fit in [fit for fit in facts.fits if fit.sample is not None][-SAMPLED_FITS:])
    looked = leading + drawn
    if looked >= received:
        return leading_found + found, leading_found + found, looked, "exactly"
    if found < MIN_FOUND:  # too few of the drawn rows to scale up: the first rows' count is a lower bound
        return (leading_found + found, leading_found + found, looked, "at least") if leading_found else None
    rest = max(received - leading, drawn)
    return leading_found + round(found * rest / drawn), leading_found + found, looked, "about"


def _not_unseen(facts: ModelFacts, evaluation: Evaluation | None) -> str | None:
    """Why the test rows may not be unseen by the model, or None: it was trained on them, or
    its weights came from somewhere the grader cannot see."""
    test_set = test_set_training(facts, evaluation)
    if test_set is not None:
        return f"{test_set}, so the test rows are not unseen. Train {facts.name} on the training set only"
    if facts.weight_changes:
        return (
            f"its weights are not all its own training's ({described(facts.weight_changes, 1)}), so the grader "
            f"cannot tell what they were trained on. Train {facts.name} with fit alone"
        )
    return None


def test_set_training(facts: ModelFacts, evaluation: Evaluation | None) -> str | None:
    """How the grader knows the model was trained on test rows, or None: their fingerprints
    among the rows its fits received or Keras drew, the rows of its fit once a per-feature
    preparation is undone, or its own measurement on test and training rows."""
    estimated = _test_rows_sampled(facts, evaluation)
    if estimated is not None and estimated[0] > max(TEST_ROWS_TOLERATED, facts.test_rows):
        total, found, looked, meant = estimated
        share = "every one of them" if meant == "exactly" else f"{looked:,} of them: each fit's first, more at random"
        return (
            f"it was trained on {'' if meant == 'exactly' else meant + ' '}{total:,} test rows or near-copies of them "
            f"({found:,} of the rows its fits received that the grader looked at, {share}, once it undid the "
            "notebook's preparation: a test row with a pixel or a feature changed is still a test row)"
        )
    if facts.test_rows > TEST_ROWS_TOLERATED:
        # What Keras drew is sampled: then the count is a lower bound.
        counted = (
            f"{facts.test_rows:,}" if facts.test_rows == facts.given_test_rows else f"at least {facts.test_rows:,}"
        )
        return f"it was trained on {counted} test images"
    return test_advantage(evaluation)


def _completion_problems(facts: ModelFacts) -> list[str]:
    """Fits that left work undone, training outside fit, and fits that trained by methods of
    the notebook's own rather than Keras'."""
    problems = [_unfinished(fit) for fit in facts.fits if not fit.finished][:3]
    own = sorted({method for fit in facts.fits for method in fit.own_training})
    if own:
        problems.append(
            f"its fit did not train it Keras' way ({', '.join(own)}); build it from Keras' model classes and train "
            "it with fit as Keras defines it"
        )
    if facts.steps_outside_fit:
        problems.append(
            f"it was also trained outside fit (train_on_batch or a training loop of its own) for "
            f"{facts.steps_outside_fit:,} "
            f"step{'s' if facts.steps_outside_fit != 1 else ''}; train it with fit only"
        )
    return problems


def _unfinished(fit: FitFacts) -> str:
    """What a fit left undone, in the terms a student can act on."""
    if fit.stopped_early:
        return (
            f"a fit stopped early (a callback set stop_training) after {fit.epochs_completed} of the "
            f"{fit.ran_epochs} epochs it ran; let it train every epoch"
        )
    if not fit.completed:
        return f"a fit raised an error after {fit.epochs_completed} of the {fit.ran_epochs} epochs it ran"
    if fit.epochs_completed != fit.ran_epochs:
        return f"a fit completed {fit.epochs_completed} of the {fit.ran_epochs} epochs it ran"
    advice = "do not set steps_per_epoch: " if fit.steps_per_epoch else ""
    return (
        f"a fit took {fit.steps:,} training steps where {fit.ran_epochs} epochs of its data in batches of "
        f"{fit.batch_size} take {fit.expected_steps:,}; {advice}train every epoch on every batch"
    )


def _unmeasured(
    facts: ModelFacts, evaluation: Evaluation | None, expected: Any, quick: bool, metric: Metric
) -> Verdict | None:
    """The accuracy check's verdict when there is no measurement to judge: skipped, or why it is missing."""
    if quick:
        return "skipped", expected, None, quick_skip_message(metric)
    if facts.architecture is None:
        return _unreadable(facts)
    if evaluation is None or evaluation.test_value is None:
        reason = evaluation.error if evaluation else "the model was not evaluated"
        return (
            "error",
            expected,
            None,
            (f"The grader could not measure the test {metric.name} of {facts.name}: {reason}."),
        )
    return None


def check_accuracy(model_spec: ModelSpec, facts: ModelFacts, evaluation: Evaluation | None, quick: bool) -> Verdict:
    """The grader's measurement of the model on the test rows within the accepted range: an
    accuracy at least its lowest, an error at most its highest; doing better than the
    reference runs never costs points."""
    bounds, metric = model_spec.accuracy, model_spec.metric
    expected = {"min": bounds.min, "max": bounds.max} if bounds else None
    unmeasured = _unmeasured(facts, evaluation, expected, quick, metric)
    if unmeasured is not None:
        return unmeasured
    assert evaluation is not None and evaluation.test_value is not None  # else it was unmeasured
    value = evaluation.test_value
    assert bounds is not None  # the pipeline requires ranges for full grading
    unseen = _not_unseen(facts, evaluation)
    if unseen is not None:
        # Measured on rows it learnt (or may have), it says nothing of rows it never saw.
        return "fail", expected, value, f"Test {metric.name} {value:.4f} is no test {metric.name}: {unseen}."
    bound, best = (bounds.min, bounds.max) if metric.higher_is_better else (bounds.max, bounds.min)
    measured = f"Test {metric.name} {value:.4f}, measured by the grader" + (
        " on the private test set" if evaluation.test_set == "private" else ""
    )
    if not metric.beyond(bound, value):  # at the bound, or better
        beyond = "above what the reference runs reach" if metric.higher_is_better else "below every reference run's"
        # A fixed model trained as specified does not get there: its training check says why
        better = f" It is {beyond}: see the training check." if metric.beyond(value, best) else ""
        relation = "at least" if metric.higher_is_better else "at most"
        return "pass", expected, value, f"{measured}, is {relation} {bound:.4f}.{better}"
    if not facts.fits:
        advice = f"{facts.name} was never trained."
    else:
        advice = "Check the preprocessing (the inputs' scale, the labels' form), the layers and the number of epochs."
    relation = "below the lowest" if metric.higher_is_better else "above the highest"
    return (
        "fail",
        expected,
        value,
        f"{measured} on the test set, is {relation} accepted {bound:.4f} (the reference runs reach "
        f"{bounds.min:.4f} to {bounds.max:.4f}). {advice}",
    )


# "Trained on the test set", from the grader's own measurement on the test rows and on as many
# training rows (benchmarks/test_advantage.py; docs/figures.md gives the figures): an honest
# model errs on the test images at least 0.6 times as often as on training images (MNIST's test
# images are easier for a model still learning: with 20 steps of training it is right on 5 points
# more of them), one that memorised the test images far less often. A classifier whose test
# error rate, at its exact (Clopper-Pearson) upper bound, is under MAX_ERROR_RATIO times its
# training error rate at its lower bound, each bound one-sided at 1 - BOUND_LEVEL and counted on
# the rows each was measured on, was trained on the test set: a model right on every one of a
# small test set is not accused for it. A regression's: its test error under MAX_ERROR_RATIO
# times its training error.
MAX_ERROR_RATIO = 0.5
BOUND_LEVEL = 0.001
# The rows measured where an evaluation does not say (one before its sizes were carried)
SAMPLE_IMAGES = 10_000

# Keras' last val_accuracy and the grader's evaluation of the same weights on the
# same test images agree to round-off.
HISTORY_TOLERANCE = 0.002


def doctored_history_warnings(
    spec: Spec, models: dict[str, ModelFacts], evaluations: dict[str, Evaluation]
) -> list[str]:
    """Models whose recorded final validation accuracy on the test set is not what their weights reach."""
    warnings = []
    for name, facts in models.items():
        evaluation = evaluations.get(name)
        fits = [fit for fit in facts.fits if fit.completed]
        # Measured on a private test set, it is no measurement of what the history saw
        if evaluation is None or evaluation.test_value is None or not fits or evaluation.test_set == "private":
            continue
        last = fits[-1]
        metric = spec.data.metric
        claims = next((last.history[key] for key in metric.history_keys if last.history.get(key)), None)
        on_test_set = (
            last.validation_rows == spec.data.test_samples
            and (last.validation_test_rows or 0) >= (1 - TEST_SET_SHARE) * spec.data.test_samples
        )
        final = claims[-1] if claims else None
        # An error has the scale of the targets: its tolerance, a share of it.
        tolerance = HISTORY_TOLERANCE * (1.0 if metric.higher_is_better else max(1.0, evaluation.test_value))
        if final is not None and on_test_set and abs(final - evaluation.test_value) > tolerance:
            warnings.append(
                f"{name}'s training history claims a final validation {metric.name} of {final:.4f} on the test "
                f"set, but its trained weights reach {evaluation.test_value:.4f}: the history was altered. "
                f"The grade uses {evaluation.test_value:.4f}, measured by the grader."
            )
    return warnings


def test_advantage(evaluation: Evaluation | None) -> str | None:
    """Why the grader's own measurement says a model was trained on the test set (it errs far
    less on the test rows than on training rows), or None. Measured outside the student's
    process, so no trick inside the kernel changes it."""
    if evaluation is None or evaluation.test_value is None or evaluation.train_value is None:
        return None
    if evaluation.metric != ACCURACY.key:  # an error: its ratio
        if evaluation.test_value >= MAX_ERROR_RATIO * evaluation.train_value:
            return None
        return (
            f"the grader measured an error of {evaluation.test_value:.4g} on the test rows but "
            f"{evaluation.train_value:.4g} on training rows: a model errs more on rows it never saw, so it was trained "
            "on the test set"
        )
    test_rows, train_rows = evaluation.test_rows or SAMPLE_IMAGES, evaluation.train_rows or SAMPLE_IMAGES
    test_errors = round((1 - evaluation.test_value) * test_rows)
    train_errors = round((1 - evaluation.train_value) * train_rows)
    if _error_bound(test_errors, test_rows, upper=True) >= MAX_ERROR_RATIO * _error_bound(
        train_errors, train_rows, upper=False
    ):
        return None
    return (
        f"the grader measured {evaluation.test_value:.2%} right on {test_rows:,} test rows but only "
        f"{evaluation.train_value:.2%} on {train_rows:,} training rows: a model errs more on rows it never saw, so "
        "it was trained on the test set"
    )


def _error_bound(errors: int, rows: int, upper: bool) -> float:
    """The exact (Clopper-Pearson) one-sided bound, at 1 - ``BOUND_LEVEL``, of an error rate of
    ``errors`` in ``rows``: upper or lower."""
    from scipy.stats import beta

    if upper:
        return 1.0 if errors >= rows else float(beta.ppf(1 - BOUND_LEVEL, errors + 1, rows - errors))
    return 0.0 if errors <= 0 else float(beta.ppf(BOUND_LEVEL, errors, rows - errors + 1))


def check_improvement(
    spec: Spec, model_spec: ModelSpec, facts: ModelFacts, evaluation: Evaluation | None, quick: bool
) -> list[CheckResult]:
    """The open answer: any allowed layers, any training set-up, judged on its integrity and on
    the accuracy the grader measures, compared with the baseline's reference runs."""
    verdicts: dict[str, Verdict] = {
        "training": _improvement_training(facts, evaluation),
        "accuracy": _improvement_accuracy(spec, model_spec, facts, evaluation, quick),
    }
    return [*check_built_model(model_spec, facts), *_scored_verdicts(model_spec, verdicts)]


def _improvement_architecture(facts: ModelFacts) -> Verdict:
    if facts.architecture is None:
        return _unreadable(facts)
    layers = [layer.describe() for layer in facts.architecture.compared_layers()]
    return "pass", None, layers, f"Its {len(layers)} layers are all of kinds the grader rebuilds: {', '.join(layers)}."


def _improvement_params(model_spec: ModelSpec, facts: ModelFacts) -> Verdict:
    if facts.architecture is None:
        return _unreadable(facts)
    count = facts.architecture.param_count()
    budget = model_spec.max_params
    if count is None:
        return "fail", budget, None, "Its size is unknown: give its first layer an input shape."
    if budget is not None and count > budget:
        return "fail", budget, count, f"It has {count:,} parameters, more than the {budget:,} allowed."
    return "pass", budget, count, f"{count:,} parameters" + (f", within the {budget:,} allowed." if budget else ".")


def _improvement_compile(model_spec: ModelSpec, facts: ModelFacts) -> Verdict:
    compiled = facts.compile
    if compiled is None:
        return "fail", list(model_spec.losses), None, "It was never compiled. Call compile(...) before fit."
    actual = {"optimizer": compiled.optimizer, "learning_rate": compiled.learning_rate, "loss": compiled.loss}
    problems = _loss_problem(model_spec, compiled.loss)
    if problems:
        return "fail", list(model_spec.losses), actual, f"In compile(...), {problems[0]}."
    rate = learning_rate_text(compiled.learning_rate)
    return "pass", list(model_spec.losses), actual, f"{compiled.optimizer} at {rate}, {compiled.loss}."


def _improvement_training(facts: ModelFacts, evaluation: Evaluation | None) -> Verdict:
    if not facts.fits:
        return "fail", None, None, "It was never trained. Call fit(...) on the training set."
    actual = {
        "epochs": sum(fit.epochs_completed for fit in facts.fits),
        "test_images": facts.test_rows,
        "steps_outside_fit": facts.steps_outside_fit,
    }
    problems = [*_integrity_problems(facts, evaluation), *_completion_problems(facts)]
    if problems:
        return "fail", None, actual, f"In fit(...), {'; '.join(problems)}."
    return "pass", None, actual, "Trained on the training images only, every epoch of every fit completed."


def compared_with_baseline(spec: Spec, model_spec: ModelSpec, accuracy: float) -> tuple[str, str]:
    """``improved`` (above every reference run of the baseline), ``worse`` (below the lowest
    accuracy the baseline is accepted at: its runs widened by the noise margin) or ``equal``
    (in between: as good within the noise of training), and the sentence that says so with the
    numbers. The accuracy check passes exactly when it is not ``worse``."""
    baseline = model_spec.baseline or ""
    runs = spec.calibration.models[baseline].test_accuracies if baseline in spec.calibration.models else ()
    if not runs or model_spec.accuracy is None:
        return "unknown", f"{baseline} has no reference runs to compare with"
    lowest, high = model_spec.accuracy.min, max(runs)
    reference = f"{baseline}'s {len(runs)} reference runs reach {min(runs):.4f} to {high:.4f}"
    if accuracy > high:
        return "improved", f"better than {baseline}: {reference}"
    if accuracy < lowest:
        return "worse", f"worse than {baseline}: {reference}, and the lowest accepted is {lowest:.4f}"
    return "equal", f"as good as {baseline} within the noise of training: {reference}"


def _improvement_accuracy(
    spec: Spec, model_spec: ModelSpec, facts: ModelFacts, evaluation: Evaluation | None, quick: bool
) -> Verdict:
    bounds = model_spec.accuracy
    expected = {"min": bounds.min, "baseline": model_spec.baseline} if bounds else None
    unmeasured = _unmeasured(facts, evaluation, expected, quick, model_spec.metric)
    if unmeasured is not None:
        return unmeasured
    assert evaluation is not None and evaluation.test_value is not None  # else it was unmeasured
    assert bounds is not None  # the pipeline requires ranges for full grading
    # An improvement is a classifier's (the spec refuses a regression's): its measurement, an accuracy.
    accuracy = evaluation.test_value
    verdict, comparison = compared_with_baseline(spec, model_spec, accuracy)
    actual = {"accuracy": accuracy, "compared": verdict}
    unseen = _not_unseen(facts, evaluation)
    if unseen is not None:
        return "fail", expected, actual, f"Test accuracy {accuracy:.4f} is no test accuracy: {unseen}."
    text = f"Test accuracy {accuracy:.4f}, measured by the grader: {comparison}."
    return ("fail" if accuracy < bounds.min else "pass"), expected, actual, text


def above_the_band_warnings(spec: Spec, models: dict[str, ModelFacts], evaluations: dict[str, Evaluation]) -> list[str]:
    """For the instructor: fixed models that do better than every reference run, with the
    evidence of how they were trained (their training check fails on it)."""
    warnings = []
    for model_spec in spec.models:
        facts, evaluation, bounds = models.get(model_spec.name), evaluations.get(model_spec.name), model_spec.accuracy
        if model_spec.kind != "fixed" or facts is None or evaluation is None or evaluation.test_value is None:
            continue
        if bounds is None:
            continue
        metric = model_spec.metric
        best = bounds.max if metric.higher_is_better else bounds.min
        if metric.beyond(evaluation.test_value, best):
            epochs = sum(fit.epochs_completed for fit in facts.fits)
            side = "above" if metric.higher_is_better else "below"
            warnings.append(
                f"{model_spec.name} reaches {evaluation.test_value:.4f}, {side} every reference run ({best:.4f} "
                f"at {'most' if metric.higher_is_better else 'least'}): it was trained for {epochs} epochs on "
                f"{facts.test_rows:,} test images by the fingerprints; no run trained as specified gets there"
            )
    return warnings
