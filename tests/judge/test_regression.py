"""A regression (`[data] task = "regression"`): the grader measures each model's test mean
absolute error, where lower is better; its range comes from the calibration runs widened by a
share of the worst; the checks, warnings and the evaluator's answers go that way. No kernel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grader.errors import SpecError
from grader.judge.checks import above_the_band_warnings, check_accuracy, doctored_history_warnings
from grader.judge.evaluate import Evaluation, _read_answer
from grader.judge.evaluator import measured
from grader.judge.facts import FitFacts, ModelFacts
from grader.spec.architecture import Architecture
from grader.spec.exercise import ACCURACY, MEAN_ABSOLUTE_ERROR, load_spec

REFERENCE = Path(__file__).resolve().parents[2] / "reference"


@pytest.fixture(scope="module")
def spec():
    return load_spec(REFERENCE / "diabetes.toml")


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
    status, _, _, message = check_accuracy(model, trained(), Evaluation(model.accuracy.max - 1), False)
    assert status == "pass" and f"is at most {model.accuracy.max:.4f}" in message
    status, _, _, message = check_accuracy(model, trained(), Evaluation(model.accuracy.min - 5), False)
    assert status == "pass" and "below every reference run's: well done" in message
    status, _, _, message = check_accuracy(model, trained(), Evaluation(model.accuracy.max + 20), False)
    assert status == "fail" and "mean absolute error" in message and "is above the highest accepted" in message
    status, _, _, message = check_accuracy(model, trained(), None, True)
    assert status == "skipped" and "test mean absolute error is checked only in a full run" in message


def test_a_history_is_read_in_the_regression_s_terms_and_a_better_error_is_noted(spec):
    (model,) = spec.models
    assert model.accuracy is not None
    altered = trained({"val_mae": [60.0, 12.0]})
    warnings = doctored_history_warnings(spec, {"regressor": altered}, {"regressor": Evaluation(46.0)})
    assert warnings and "final validation mean absolute error of 12.0000" in warnings[0]
    honest = trained({"val_mae": [60.0, 46.02]})  # Keras' figure and the grader's, to a share of round-off
    assert not doctored_history_warnings(spec, {"regressor": honest}, {"regressor": Evaluation(46.0)})
    better = above_the_band_warnings(spec, {"regressor": honest}, {"regressor": Evaluation(model.accuracy.min - 1)})
    assert better and "below every reference run" in better[0]


def test_the_evaluator_s_answer_is_an_error_of_any_size_or_an_accuracy_a_share():
    answer = json.dumps({"evaluation": {"accuracy": 46.5, "train_accuracy": 40.1}, "grader_fault": None})
    assert _read_answer(answer, MEAN_ABSOLUTE_ERROR)[0].accuracy == 46.5
    with pytest.raises(ValueError, match=r"a measured accuracy of 46\.5"):
        _read_answer(answer, ACCURACY)
    with pytest.raises(ValueError, match="a measured mean absolute error of -1"):
        _read_answer(json.dumps({"evaluation": {"accuracy": -1}, "grader_fault": None}), MEAN_ABSOLUTE_ERROR)


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
