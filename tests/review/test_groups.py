"""Answer groups: no answer, the stance a question declares (against the measurement for the
improvement), and answers alike in their words."""

from __future__ import annotations

from grader.judge.answers import Answer
from grader.review.groups import NO_ANSWER, OTHERS, Measured, stance_of, suggest_groups
from tests.review.conftest import SPEC

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
