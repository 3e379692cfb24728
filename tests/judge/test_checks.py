"""Checks and scoring from JSON fixtures of kernel facts: no TensorFlow, no kernel."""

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from grader.evaluation.evaluate import Evaluation
from grader.evaluation.model_config import parse_model_config
from grader.judge.checks import doctored_history_warnings, run_checks
from grader.judge.facts import CompileFacts, FitFacts, ModelFacts
from grader.judge.results import score
from grader.spec.layers import Layer
from tests.conftest import FIXTURES, keras_config

CASES = sorted((FIXTURES / "facts").glob("*.json"))


def model_facts(name: str, raw: dict[str, Any]) -> ModelFacts:
    return ModelFacts(
        name=name,
        origin="fit" if raw["fits"] else "end",
        architecture=parse_model_config(keras_config(raw["config"])),
        problem=None,
        compile=CompileFacts(**raw["compile"]) if raw["compile"] else None,
        fits=tuple(FitFacts(**fit) for fit in raw["fits"]),
        weights=(),
        cell=None,
    )


@pytest.mark.parametrize("case_path", CASES, ids=[path.stem for path in CASES])
def test_verdicts_messages_and_score(case_path: Path, spec):
    case = json.loads(case_path.read_text())
    models = {name: model_facts(name, raw) for name, raw in case["models"].items()}
    evaluations = {name: Evaluation(**raw) for name, raw in case["evaluations"].items()}
    checks = run_checks(spec, models, evaluations, case["quick"], case.get("hint", ""))
    by_id = {check.id: check for check in checks}
    assert len(checks) == 15
    for check_id, status in case["expected"].items():
        assert by_id[check_id].status == status, (check_id, by_id[check_id].message)
    for check_id, fragments in case.get("messages", {}).items():
        for fragment in fragments:
            assert fragment in by_id[check_id].message
    assert list(score(checks)) == case["score"]


def test_every_check_says_what_it_expected_and_found(spec):
    case = json.loads((FIXTURES / "facts" / "model_2_wrong_setup.json").read_text())
    models = {name: model_facts(name, raw) for name, raw in case["models"].items()}
    checks = {c.id: c for c in run_checks(spec, models, {"model_2": Evaluation(0.5)}, quick=False)}
    assert checks["model_2.optimizer"].expected == {
        "optimizer": "RMSprop",
        "learning_rate": 0.001,
        "loss": "categorical_crossentropy",
    }
    assert checks["model_2.optimizer"].actual == {
        "optimizer": "Adam",
        "learning_rate": 0.01,
        "loss": "mean_squared_error",
    }
    assert checks["model_2.training"].actual == {
        "batch_size": 64,
        "epochs": 10,
        "train_samples": 10000,
        "test_images": 9997,
        "steps_outside_fit": 0,
    }
    assert checks["model_2.accuracy"].actual == 0.5
    # Trained on the test set: what it measured there is no test accuracy, whatever its value
    assert "0.5000 is no test accuracy: it was trained on 9,997 test images" in checks["model_2.accuracy"].message
    assert checks["model_2.accuracy"].expected == {"min": 0.973, "max": 0.995}


def test_an_evaluation_error_is_an_error_not_a_fail(spec):
    case = json.loads((FIXTURES / "facts" / "all_correct_full.json").read_text())
    models = {name: model_facts(name, raw) for name, raw in case["models"].items()}
    evaluations = {"model_1": Evaluation(None, "could not evaluate the model: 3 weight arrays were exported")}
    checks = {c.id: c for c in run_checks(spec, models, evaluations, quick=False)}
    assert checks["model_1.accuracy"].status == "error"
    assert "3 weight arrays" in checks["model_1.accuracy"].message
    assert checks["model_2.accuracy"].status == "error"  # never evaluated


def test_quick_grades_are_all_out_of_the_same_points_even_with_a_model_missing(spec):
    case = json.loads((FIXTURES / "facts" / "all_correct_quick.json").read_text())
    models = {name: model_facts(name, raw) for name, raw in case["models"].items() if name != "model_2"}
    checks = {c.id: c for c in run_checks(spec, models, {}, quick=True, missing_hint="cell 9 raised NameError")}
    assert checks["model_2.architecture"].status == "error"
    assert checks["model_2.accuracy"].status == "skipped"
    assert score(list(checks.values())) == (10, 15)


def test_a_history_that_disagrees_with_the_weights_is_reported(spec):
    case = json.loads((FIXTURES / "facts" / "all_correct_full.json").read_text())
    models = {name: model_facts(name, raw) for name, raw in case["models"].items()}
    on_test_set = {"validation_rows": 10000, "validation_test_rows": 9990}
    for name in models:
        fits = tuple(dataclasses.replace(fit, **on_test_set) for fit in models[name].fits)
        models[name] = dataclasses.replace(models[name], fits=fits)
    evaluations = {"model_1": Evaluation(0.9701), "model_2": Evaluation(0.9699)}  # fixtures claim 0.97
    warnings = doctored_history_warnings(spec, models, evaluations)
    assert warnings == []  # within round-off
    evaluations["model_2"] = Evaluation(0.9412)
    (warning,) = doctored_history_warnings(spec, models, evaluations)
    assert warning.startswith("model_2's training history claims a final validation accuracy of 0.9700")
    assert "reach 0.9412" in warning


def correct_model_1(spec, **fit_changes: Any) -> ModelFacts:
    case = json.loads((FIXTURES / "facts" / "all_correct_full.json").read_text())
    facts = model_facts("model_1", case["models"]["model_1"])
    return dataclasses.replace(facts, fits=(dataclasses.replace(facts.fits[0], **fit_changes),))


@pytest.mark.parametrize(
    ("fit_changes", "message"),
    [
        # a callback stops the run after one epoch, or before its first batch
        ({"epoch_times": [1.5], "stopped_early": True}, "a fit stopped early (a callback set stop_training) after 1"),
        ({"epoch_times": [], "completed": False, "iterations_after": 0}, "a fit raised an error after 0 of the 30"),
        # steps_per_epoch=2: thirty epochs of two batches
        ({"steps_per_epoch": 2, "iterations_after": 60}, "took 60 training steps where 30 epochs"),
        ({"iterations_after": 60}, "took 60 training steps where 30 epochs of its data in batches of 128 take 14,070"),
    ],
)
def test_training_is_judged_on_what_fit_completed_not_on_what_it_asked(spec, fit_changes, message):
    from grader.judge.checks import check_training

    facts = correct_model_1(spec, **fit_changes)
    status, _, _, text = check_training(spec.model("model_1"), facts, 60000)
    assert status == "fail" and message in text
    assert check_training(spec.model("model_1"), correct_model_1(spec), 60000)[0] == "pass"


def test_training_outside_fit_and_test_rows_over_every_call_fail_the_training_check(spec):
    from grader.judge.checks import check_training
    from grader.judge.facts import BatchTraining

    model = spec.model("model_1")
    outside = dataclasses.replace(correct_model_1(spec), iterations_at_snapshot=14070 + 50)
    status, _, actual, text = check_training(model, outside, 60000)
    assert status == "fail" and actual["steps_outside_fit"] == 50 and "trained outside fit" in text
    batches = dataclasses.replace(correct_model_1(spec), batches=BatchTraining(calls=3, rows=384, test_rows=384))
    status, _, actual, text = check_training(model, batches, 60000)
    assert status == "fail" and "trained on 384 test images" in text and actual["steps_outside_fit"] == 3
    # 599 test images in each of 20 fits: a few per fit, many in all
    base = correct_model_1(spec)
    few = dataclasses.replace(base.fits[0], epochs=1, ran_epochs=1, epoch_times=[1.0], test_rows=599, rows=60599)
    status, _, _, text = check_training(model, dataclasses.replace(base, fits=(few,) * 20), 60000)
    assert status == "fail" and "trained on 11,980 test images" in text


def test_a_model_far_better_on_test_images_than_on_training_images_fails_its_training(spec):
    """The grader's own measurement, which nothing in the kernel can change, decides in full mode."""
    from grader.judge.checks import check_training

    model, facts = spec.model("model_1"), correct_model_1(spec)
    honest = check_training(model, facts, 60000, evaluation=Evaluation(0.976, None, 0.991))
    assert honest[0] == "pass"
    status, _, _, text = check_training(model, facts, 60000, evaluation=Evaluation(0.999, None, 0.95))
    assert status == "fail"
    assert "99.90% right on 10,000 test rows but only 95.00% on 10,000 training rows" in text
    assert "trained on the test set" in text
    # Within the noise of two samples of 10,000 images: no verdict
    assert check_training(model, facts, 60000, evaluation=Evaluation(0.51, None, 0.50))[0] == "pass"


def test_test_images_among_the_drawn_batches_and_weights_from_elsewhere_fail_the_training(spec):
    from grader.judge.checks import check_accuracy, check_training
    from grader.judge.facts import DrawnRows, WeightChange

    model = spec.model("model_1")
    drawn = dataclasses.replace(
        correct_model_1(spec), drawn=DrawnRows(rows=1_800_000, fingerprinted=112_500, test_rows=620)
    )
    status, _, actual, text = check_training(model, drawn, 60000)
    # what Keras drew is a sample: a lower bound
    assert status == "fail" and "trained on at least 620 test images" in text and actual["test_images"] == 620
    change = WeightChange("set_weights on the model, weights that the training of cheat produced", 7, "during fit 2")
    replaced = dataclasses.replace(correct_model_1(spec), weight_changes=(change,))
    status, _, _, text = check_training(model, replaced, 60000)
    assert status == "fail"
    assert (
        "its weights are not all its own training's: set_weights on the model, weights that the training of cheat "
        "produced (in cell 7, during fit 2)" in text
    )
    # and what the grader measured of weights from elsewhere is no test accuracy either
    status, _, value, text = check_accuracy(model, replaced, Evaluation(0.9931), quick=False)
    assert status == "fail" and value == 0.9931
    assert text.startswith("Test accuracy 0.9931 is no test accuracy: its weights are not all its own training's")
    assert check_accuracy(model, correct_model_1(spec), Evaluation(0.9772), quick=False)[0] == "pass"


def test_an_improvement_is_judged_on_its_integrity_and_its_measured_accuracy():
    from grader.spec.exercise import load_spec
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "reference" / "mnist_mlp_open.toml")
    case = json.loads((FIXTURES / "facts" / "all_correct_full.json").read_text())
    mine = dataclasses.replace(model_facts("model_3", case["models"]["model_2"]), name="model_3")
    evaluation = {"model_3": Evaluation(0.9871)}
    checks = {
        c.id: c for c in run_checks(spec, {"model_3": mine}, evaluation, quick=False) if c.id.startswith("model_3")
    }
    assert {check.status for check in checks.values()} == {"pass"}
    assert checks["model_3.accuracy"].actual == {"accuracy": 0.9871, "compared": "improved"}
    assert (
        "better than model_2: model_2's 5 reference runs reach 0.9830 to 0.9850" in checks["model_3.accuracy"].message
    )
    worse = next(
        c
        for c in run_checks(spec, {"model_3": mine}, {"model_3": Evaluation(0.95)}, False)
        if c.id == "model_3.accuracy"
    )
    assert worse.status == "fail" and worse.actual["compared"] == "worse" and "the lowest accepted is" in worse.message
    # Below every model_2 run but within the noise margin: as good, and the points say so
    lowest = spec.model("model_3").accuracy.min
    runs = spec.calibration.models["model_2"].test_accuracies
    assert lowest < min(runs)
    within = Evaluation(round((lowest + min(runs)) / 2, 4))
    equal = next(
        c for c in run_checks(spec, {"model_3": mine}, {"model_3": within}, False) if c.id == "model_3.accuracy"
    )
    assert equal.status == "pass" and equal.actual["compared"] == "equal" and "within the noise" in equal.message
    missing = [c for c in run_checks(spec, {}, {}, quick=True) if c.id.startswith("model_3")]
    assert {c.status for c in missing} == {"error", "skipped"} and "No improvement was found" in missing[0].message


def test_learning_rates_are_shown_as_written():
    from grader.judge.checks import learning_rate_text

    assert learning_rate_text(0.001500000013038516) == "0.0015"
    assert learning_rate_text(0.0010000000474974513) == "0.001"


def _binary_model(output: Layer, loss: str) -> ModelFacts:
    from grader.spec.architecture import Architecture

    hidden = Layer("Dense", units=16, activation="relu")
    return ModelFacts(
        name="net", origin="fit", architecture=Architecture((30,), (hidden, output)), problem=None,
        compile=CompileFacts("Adam", 0.001, loss), fits=(), weights=(), cell=None,
    )  # fmt: skip


@pytest.mark.parametrize("forms", [("sigmoid", "softmax"), ()])
def test_two_softmax_units_are_one_sigmoid_unit_where_the_spec_accepts_both_forms(forms):
    from grader.judge.checks import check_built_model
    from grader.spec.exercise import ModelSpec

    sigmoid = Layer("Dense", units=1, activation="sigmoid")
    spec_model = ModelSpec(
        name="net", layers=(Layer("Dense", units=16, activation="relu"), sigmoid), params=513, optimizer="Adam",
        learning_rate=0.001, losses=("binary_crossentropy",), batch_size=32, epochs=10, accuracy=None,
        points={"architecture": 2, "params": 1, "optimizer": 1}, binary_forms=forms,
    )  # fmt: skip
    softmax = _binary_model(Layer("Dense", units=2, activation="softmax"), "sparse_categorical_crossentropy")
    verdicts = {check.id: check.status for check in check_built_model(spec_model, softmax)}
    expected = "pass" if forms else "fail"
    assert verdicts == {"net.architecture": expected, "net.params": expected, "net.optimizer": expected}
    # The spec's own form passes; two softmax units on the binary loss are checked in the softmax form
    own = {
        check.id: check.status for check in check_built_model(spec_model, _binary_model(sigmoid, "binary_crossentropy"))
    }
    assert set(own.values()) == {"pass"}
    mixed = _binary_model(Layer("Dense", units=2, activation="softmax"), "binary_crossentropy")
    optimizer = {check.id: check.status for check in check_built_model(spec_model, mixed)}["net.optimizer"]
    assert optimizer == ("fail" if forms else "pass")


@pytest.mark.parametrize(
    ("test", "train", "accused"),
    [
        # the sequence exercise: right on all 600 test rows, 399 of 400 training rows (honest)
        ((1.0, 600), (399 / 400, 400), False),
        # breast cancer: 114 of 114 and 75 of 76 (honest)
        ((1.0, 114), (75 / 76, 76), False),
        # wine: 36 of 36 and 22 of 24 (honest: a small set right on every row)
        ((1.0, 36), (22 / 24, 24), False),
        # MNIST, memorised: 99.9% on the test images, 95% on as many training images
        ((0.999, 10_000), (0.95, 10_000), True),
        # the digits, memorised: every test image right, 10% of the training images wrong
        ((1.0, 359), (0.9, 240), True),
    ],
)
def test_the_train_test_measurement_counts_the_rows_each_side_was_measured_on(test, train, accused):
    from grader.judge.checks import test_advantage

    evaluation = Evaluation(test[0], None, train[0], test_rows=test[1], train_rows=train[1])
    assert (test_advantage(evaluation) is not None) == accused


def test_a_regression_far_better_on_its_test_rows_was_trained_on_them():
    from grader.judge.checks import test_advantage

    honest = Evaluation(46.0, None, 43.5, metric="mean_absolute_error", test_rows=88, train_rows=59)
    assert test_advantage(honest) is None
    memorised = Evaluation(12.0, None, 47.0, metric="mean_absolute_error", test_rows=88, train_rows=59)
    assert "an error of 12 on the test rows but 47 on training rows" in test_advantage(memorised)


def test_a_fit_that_trained_by_a_train_step_of_the_notebooks_own_fails_the_training(spec):
    from grader.judge.checks import check_training

    facts = correct_model_1(spec)
    own = dataclasses.replace(
        facts, fits=(dataclasses.replace(facts.fits[0], own_training=("train_step replaced on the model",)),)
    )
    status, _, _, text = check_training(spec.model("model_1"), own, 60000)
    assert status == "fail" and "did not train it Keras' way (train_step replaced on the model)" in text


def test_a_fixed_model_beyond_what_its_reference_runs_reach_fails_its_training(spec):
    """MNIST's model_1: its accepted range tops out at 0.9866 (its runs widened by the margin).
    Trained with the test images as near-copies, it measured 0.9932 (issue 36): not as specified."""
    from grader.judge.checks import check_training

    model = spec.model("model_1")
    facts = correct_model_1(spec)
    assert model.accuracy is not None and model.accuracy.max < 0.99
    status, _, _, text = check_training(model, facts, 60000, evaluation=Evaluation(0.9932, None, 0.9843))
    assert status == "fail" and "0.9932, above what this model reaches trained as specified (0.9866 at most" in text
    assert check_training(model, facts, 60000, evaluation=Evaluation(0.9801, None, 0.9843))[0] == "pass"


def test_test_rows_among_a_fit_s_first_rows_are_counted_as_they_are_and_the_drawn_ones_scaled_up(spec):
    """The kernel saves each fit's first rows and more drawn at random: the first rows are no
    random sample (a notebook that puts the test rows first fills them), so they are counted as
    they are and only the drawn ones are scaled up to the rest of the rows."""
    from pathlib import Path

    from grader.judge.checks import _test_rows_sampled, check_training

    model = spec.model("model_1")
    sampled = correct_model_1(spec, sample=Path("fit-0-sample.npy"))  # one fit of 60,000 rows
    evaluation = Evaluation(0.98, sample_test_rows=6, sample_rows=302, leading_test_rows=32, leading_rows=32)
    assert _test_rows_sampled(sampled, evaluation) == (32 + round(6 * 59_968 / 302), 38, 334, "about")
    status, _, actual, text = check_training(model, sampled, 60000, evaluation=evaluation)
    assert status == "fail" and actual["test_images"] == 1223
    assert "it was trained on about 1,223 test rows or near-copies of them (38 of the rows" in text
    assert "334 of them: each fit's first, more at random" in text
    # Too few drawn ones to scale up: the first rows' count, a lower bound
    few = Evaluation(0.98, sample_test_rows=2, sample_rows=302, leading_test_rows=32, leading_rows=32)
    assert _test_rows_sampled(sampled, few) == (34, 34, 334, "at least")
    # Every row looked at: a count
    small = correct_model_1(spec, sample=Path("fit-0-sample.npy"), rows=300)
    every = Evaluation(0.98, sample_test_rows=20, sample_rows=268, leading_test_rows=0, leading_rows=32)
    assert _test_rows_sampled(small, every) == (20, 20, 300, "exactly")
    # An honest fit, and too few drawn ones with none among the first: nothing to say
    honest = Evaluation(0.98, sample_test_rows=0, sample_rows=302, leading_test_rows=0, leading_rows=32)
    assert _test_rows_sampled(sampled, honest) is None
    assert _test_rows_sampled(sampled, Evaluation(0.98, sample_test_rows=3, sample_rows=302, leading_rows=32)) is None


def test_a_sample_s_first_rows_are_those_at_the_first_positions():
    import numpy as np

    from grader.evaluation.preprocessing import _leading

    assert _leading(np.array([0, 1, 2, 7, 40]), 5) == 3
    assert _leading(np.array([0, 1, 2]), 3) == 3
    assert _leading(np.array([5, 9]), 2) == 0
    assert _leading(None, 4) == 4  # a tensor's sample: its first rows
