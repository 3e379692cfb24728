"""A graded batch for the review: a results.json of a class whose written answers come in the
shapes real ones do (numbered, one stance or the other, unanswered), and no kernel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.judge.answers import Answer
from grader.judge.results import GradeRun, ModelRecord, SubmissionResult
from grader.spec.exercise import DEFAULT_SPEC, load_spec

SPEC = load_spec(DEFAULT_SPEC)
Q1_ANSWERS = (
    "Model 2 is better: I would put model_2 into production for its accuracy.",
    "I prefer model_2, it is more accurate (98%).",
    "model_1: it is 8 times smaller, I would choose it.",
    "It depends on the time we have against the accuracy we need.",
    "",
)
Q3_ANSWERS = ("Wider layers: yes, it improved.", "L2 regularization. It did not improve.", "")


def submission(index: int) -> SubmissionResult:
    answers = (
        Answer("q1", Q1_ANSWERS[index % len(Q1_ANSWERS)], (18,), "numbered"),
        Answer("q2", f"The validation loss rises after {5 + index % 4} epochs: overfitting.", (18,), "numbered"),
        Answer("q3", Q3_ANSWERS[index % len(Q3_ANSWERS)], (18,), "numbered"),
    )
    models = {
        "model_1": ModelRecord(None, {"loss": [0.5, 0.3], "val_loss": [0.4, 0.35]}, test_value=0.976),
        "model_2": ModelRecord(None, {"loss": [0.4, 0.2], "val_loss": [0.3, 0.31]}, test_value=0.982),
        "model_3": ModelRecord(None, {}, test_value=0.97 if index % 2 else 0.979),
    }
    return SubmissionResult(
        f"student{index:02d}", f"submissions/student{index:02d}.ipynb", "graded", 10.0 + index % 5, 15.0, (),
        models=models, answers=answers,
    )  # fmt: skip


def write_batch(folder: Path, size: int) -> Path:
    run = GradeRun("test", "full", SPEC.name, tuple(submission(i) for i in range(size)), 15.0, (), SPEC.questions)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(run.to_dict()))
    return folder


@pytest.fixture
def batch_folder(tmp_path: Path) -> Path:
    return write_batch(tmp_path / "out", 20)
