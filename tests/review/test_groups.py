"""Answer groups: no answer, the stance a question declares (against the measurement for the
improvement), and answers alike in their words."""

from __future__ import annotations

import json

from grader.judge.answers import Answer
from grader.review.batch import ReviewBatch
from grader.review.groups import NO_ANSWER, OTHERS, Measured, stance_of, suggest_groups
from tests.review.conftest import SPEC, write_batch

Q1, Q2, Q3 = SPEC.questions


def test_which_model_an_answer_prefers():
    assert stance_of(Q1, Answer("q1", "I would put the second model into production.")) == "prefers model_2"
    assert stance_of(Q1, Answer("q1", "Model 1 is smaller. I'd choose model 1.")) == "prefers model_1"
    assert stance_of(Q1, Answer("q1", "It depends on the hardware.")) == "says it depends"
    assert stance_of(Q1, Answer("q1", "Both reach 97%.")) == "prefers no one model clearly"
    assert stance_of(Q2, Answer("q2", "overfitting")) is None  # q2 declares no stance


def test_whether_the_improvement_improved_set_against_the_measurement():
    worse = Measured({"model_3": 0.968, "model_1": 0.976})
    assert stance_of(Q3, Answer("q3", "Yes, it improved."), worse) == "says it improved: contradicts the measurement"
    assert stance_of(Q3, Answer("q3", "It did not improve."), worse) == (
        "says it did not improve: agrees with the measurement"
    )
    assert stance_of(Q3, Answer("q3", "It did not improve.")) == "says it did not improve"  # nothing measured
    assert stance_of(Q3, Answer("q3", "I used L2.")) == "does not say whether it improved"


def test_an_error_that_fell_is_an_improvement():
    """Measured in a metric where lower is better (a regression's mean absolute error)."""
    lower = Measured({"model_3": 40.0, "model_1": 46.0}, higher_is_better=False)
    assert stance_of(Q3, Answer("q3", "Yes, it improved."), lower) == "says it improved: agrees with the measurement"


def test_the_measurements_of_a_batch_are_read_in_its_metric_and_before_schema_version_2_as_accuracies(tmp_path):
    folder = write_batch(tmp_path, 2)
    document = json.loads((folder / "results.json").read_text())
    assert ReviewBatch.load(folder).measured("student00") == Measured(
        {"model_1": 0.976, "model_2": 0.982, "model_3": 0.979}
    )
    errors = {"model_1": 46.0, "model_2": 45.5, "model_3": 44.0}
    for submission in document["submissions"]:  # a regression's, in schema version 2
        for name, model in submission["models"].items():
            del model["test_accuracy"], model["train_accuracy"]
            model.update(metric="mean_absolute_error", test_mean_absolute_error=errors[name])
            model.update(train_mean_absolute_error=None)
    (folder / "results.json").write_text(json.dumps(document))
    batch = ReviewBatch.load(folder)
    assert batch.metric_name == "mean absolute error"
    assert batch.measured("student00") == Measured(errors, higher_is_better=False)
    del document["schema_version"]  # version 1: no metric, every measurement a test_accuracy
    for submission in document["submissions"]:
        for model in submission["models"].values():
            del model["metric"], model["train_mean_absolute_error"]
            model["test_accuracy"] = model.pop("test_mean_absolute_error")
    (folder / "results.json").write_text(json.dumps(document))
    batch = ReviewBatch.load(folder)
    assert batch.metric_name == "accuracy"  # as it was written
    assert batch.measured("student00") == Measured(errors)


def test_unanswered_together_and_alike_answers_clustered():
    answers = {
        "a": Answer("q2", "The validation loss rises after ten epochs: overfitting."),
        "b": Answer("q2", "Overfitting: the validation loss rises after 8 epochs."),
        "c": Answer("q2", "The accuracy is more meaningful than the loss."),
        "d": Answer("q2", "Accuracy is more meaningful, loss is harder to read."),
        "e": Answer("q2", "Curves look fine."),
        "f": Answer("q2", ""),
        "g": Answer("q2", "See above."),  # stop words alone: nothing to compare by
    }
    groups = suggest_groups(answers, {})  # q2 declares no stance
    assert groups["f"] == NO_ANSWER
    assert groups["a"] == groups["b"] != groups["c"] == groups["d"]
    assert groups["e"] == groups["g"] == OTHERS
