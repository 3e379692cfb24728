"""A regression (`[data] task = "regression"`): the grader measures each model's test mean
absolute error, where lower is better; its range comes from the calibration runs widened by a
share of the worst; the checks, warnings and the evaluator's answers go that way. No kernel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grader.errors import SpecError
from grader.evaluation.evaluate import Evaluation, _read_answer
from grader.evaluation.evaluator import measured
from grader.judge import checks
from grader.judge.checks import above_the_band_warnings, check_accuracy, doctored_history_warnings
from grader.judge.facts import FitFacts, ModelFacts
from grader.judge.pipeline import _model_record
from grader.spec.architecture import Architecture
from grader.spec.exercise import ACCURACY, MEAN_ABSOLUTE_ERROR, load_spec
from tests.conftest import assert_follows_results_schema

REFERENCE = Path(__file__).resolve().parents[2] / "reference"


@pytest.fixture(scope="module")
def spec():
    return load_spec(REFERENCE / "diabetes.toml")


def error_of(value: float) -> Evaluation:
    """The grader's measurement of a regression: its mean absolute error on the test rows."""
    return Evaluation(value, metric=MEAN_ABSOLUTE_ERROR.key)


def trained(history: dict | None = None, validation_rows: int = 88) -> ModelFacts:
    fit = FitFacts(32, 60, 0, 0.0, 354, 0, history or {}, [0.1] * 60, True, validation_rows, 88)
    (model,) = load_spec(REFERENCE / "diabetes.toml").models
    return ModelFacts("regressor", "fit", Architecture((10,), model.layers), None, None, (fit,), (), 4)


def test_the_spec_measures_an_error_and_accepts_up_to_a_tenth_above_the_worst_run(spec):
    (model,) = spec.models
    assert spec.data.task == "regression" and model.metric is MEAN_ABSOLUTE_ERROR
    runs = spec.calibration.models["regressor"].test_accuracies
    assert model.accuracy is not None
    assert model.accuracy.max == pytest.approx(max(runs) * 1.1, abs=1e-4)
    assert model.accuracy.min == pytest.approx(min(runs) - 0.1 * max(runs), abs=1e-4)


def test_an_error_at_most_the_range_s_top_passes_and_lower_is_better(spec):
    (model,) = spec.models
    assert model.accuracy is not None
    status, _, _, message = check_accuracy(model, trained(), error_of(model.accuracy.max - 1), False)
    assert status == "pass" and f"is at most {model.accuracy.max:.4f}" in message
    status, _, _, message = check_accuracy(model, trained(), error_of(model.accuracy.min - 5), False)
    assert status == "pass" and "below every reference run's: see the training check" in message
    status, _, _, message = check_accuracy(model, trained(), error_of(model.accuracy.max + 20), False)
    assert status == "fail" and "mean absolute error" in message and "is above the highest accepted" in message
    status, _, _, message = check_accuracy(model, trained(), None, True)
    assert status == "skipped" and "test mean absolute error is checked only in a full run" in message


def test_a_history_is_read_in_the_regression_s_terms_and_a_better_error_is_noted(spec):
    (model,) = spec.models
    assert model.accuracy is not None
    altered = trained({"val_mae": [60.0, 12.0]})
    warnings = doctored_history_warnings(spec, {"regressor": altered}, {"regressor": error_of(46.0)})
    assert warnings and "final validation mean absolute error of 12.0000" in warnings[0]
    honest = trained({"val_mae": [60.0, 46.02]})  # Keras' figure and the grader's, to a share of round-off
    assert not doctored_history_warnings(spec, {"regressor": honest}, {"regressor": error_of(46.0)})
    better = above_the_band_warnings(spec, {"regressor": honest}, {"regressor": error_of(model.accuracy.min - 1)})
    assert better and "below every reference run" in better[0]


def answer(metric: str, test_value: float, train_value: float | None = None) -> str:
    evaluation = {"metric": metric, "test_value": test_value, "train_value": train_value}
    return json.dumps({"evaluation": evaluation, "grader_fault": None})


def test_the_evaluator_s_answer_is_an_error_of_any_size_or_an_accuracy_a_share():
    evaluation = _read_answer(answer("mean_absolute_error", 46.5, 40.1), MEAN_ABSOLUTE_ERROR)[0]
    assert evaluation == Evaluation(46.5, train_value=40.1, metric="mean_absolute_error")
    with pytest.raises(ValueError, match=r"a measured accuracy of 46\.5"):
        _read_answer(answer("accuracy", 46.5), ACCURACY)
    with pytest.raises(ValueError, match="a measured mean absolute error of -1"):
        _read_answer(answer("mean_absolute_error", -1), MEAN_ABSOLUTE_ERROR)


def test_the_evaluator_s_answer_names_the_exercise_s_metric():
    with pytest.raises(ValueError, match="a measurement of mean_absolute_error where the exercise's is accuracy"):
        _read_answer(answer("mean_absolute_error", 0.5), ACCURACY)
    with pytest.raises(ValueError, match="a measurement of None where"):
        _read_answer(json.dumps({"evaluation": {"test_value": 46.5}, "grader_fault": None}), MEAN_ABSOLUTE_ERROR)


def test_a_regression_s_result_holds_its_mean_absolute_error_under_that_name(spec):
    """results.json names the measurement for what it is: a gradebook script that reads
    ``test_accuracy`` finds none, rather than an error it would take for an accuracy."""
    evaluation = Evaluation(46.1, train_value=40.2, metric=MEAN_ABSOLUTE_ERROR.key)
    record = _model_record(trained(), evaluation, spec.data.metric).to_dict()
    assert record["metric"] == "mean_absolute_error"
    assert (record["test_mean_absolute_error"], record["train_mean_absolute_error"]) == (46.1, 40.2)
    assert not {"test_accuracy", "train_accuracy"} & set(record)
    assert_follows_results_schema(json.loads(json.dumps(record)), "model")
    unmeasured = _model_record(trained(), None, spec.data.metric).to_dict()  # quick mode: named all the same
    assert unmeasured["metric"] == "mean_absolute_error" and unmeasured["test_mean_absolute_error"] is None
    assert checks.test_advantage(evaluation) is None  # an error rate's statistics: a classifier's


def test_the_evaluator_measures_the_mean_absolute_error_of_one_output(spec):
    class Linear:
        def predict(self, rows, batch_size, verbose):
            return rows[:, :1] * 2.0

    rows, targets = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]), np.array([2.0, 5.0, 6.0], "float32")
    assert measured(Linear(), rows, targets, spec.data) == round(1 / 3, 6)  # |2-2| + |4-5| + |6-6|, over 3


def test_an_improvement_of_a_regression_is_refused_saying_so(tmp_path):
    text = (
        (REFERENCE / "diabetes.toml")
        .read_text()
        .replace('name = "regressor"', 'name = "regressor"\nkind = "improvement"\nbaseline = "regressor"')
    )
    (tmp_path / "open.toml").write_text(text)
    with pytest.raises(SpecError, match="improvement of a regression, which is not graded yet"):
        load_spec(tmp_path / "open.toml")
