"""A graded batch as the review sees it: the questions and each submission's answers and
measurements, read from the batch's ``results.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.judge.answers import Answer, answer_to
from grader.judge.results import SubmissionResult
from grader.review.groups import Measured
from grader.spec.exercise import ACCURACY, METRICS_BY_KEY
from grader.spec.questions import Question

RESULTS_NAME = "results.json"


@dataclass(frozen=True)
class ReviewBatch:
    """``submissions``: every result of the batch, by id, in its order."""

    folder: Path
    questions: tuple[Question, ...]
    submissions: dict[str, SubmissionResult]
    spec_name: str = ""

    @classmethod
    def load(cls, folder: Path) -> ReviewBatch:
        """The batch graded into ``folder``; a ``GraderError`` says what to do when there is none."""
        path = folder / RESULTS_NAME
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GraderError(
                f"{folder} holds no graded batch ({RESULTS_NAME} is missing): grade one first, "
                f"`grader grade SUBMISSIONS --out {folder}`."
            ) from None
        except (OSError, ValueError) as error:
            raise GraderError(f"cannot read {path} ({error}); grade the batch again to rewrite it.") from None
        questions = tuple(Question.from_dict(question) for question in data.get("questions", ()))
        if not questions:
            raise GraderError(
                f"the batch in {folder} has no written questions: its spec declares no [[questions]] "
                "(see reference/mnist_mlp.toml), or it was graded by a grader older than the review."
            )
        results = [SubmissionResult.from_dict(result) for result in data["submissions"]]
        return cls(folder, questions, {result.id: result for result in results}, str(data.get("spec", "")))

    def question(self, question_id: str) -> Question:
        found = next((question for question in self.questions if question.id == question_id), None)
        if found is None:
            raise GraderError(f"no question {question_id!r}; the batch's: {[q.id for q in self.questions]}")
        return found

    def answers(self) -> dict[str, tuple[Answer, ...]]:
        """Each submission's answers, one per question (an empty one where none was found)."""
        return {
            submission: tuple(self.answer(submission, question.id) for question in self.questions)
            for submission in self.submissions
        }

    def answer(self, submission: str, question_id: str) -> Answer:
        result = self.submissions[submission]
        return answer_to(question_id, result.answers)

    def measured(self, submission: str) -> Measured:
        """What the grader measured of the submission's models on the test rows (full mode),
        in the exercise's metric."""
        result = self.submissions[submission]
        metrics = {METRICS_BY_KEY.get(model.metric, ACCURACY) for model in result.models.values()}
        higher_is_better = all(metric.higher_is_better for metric in metrics)
        return Measured({name: model.test_value for name, model in result.models.items()}, higher_is_better)

    @property
    def metric_name(self) -> str:
        """The exercise's metric, as text says it, as every model's record names it (``accuracy``
        where none does)."""
        records = (model for result in self.submissions.values() for model in result.models.values())
        return next((record.metric_name for record in records), ACCURACY.name)

    def remarks(self, submission: str, answer: Answer) -> list[str]:
        """The grader's warnings about what the answer's cells state (a parameter count or an
        accuracy its measurements contradict)."""
        cells = tuple(f"markdown cell {cell} " for cell in answer.cells)
        return (
            [warning for warning in self.submissions[submission].warnings if warning.startswith(cells)] if cells else []
        )

    def name(self, submission: str) -> str:
        student = self.submissions[submission].student
        return student.name if student is not None and student.name else submission
