"""The grade of a written answer, from the rubric items a person applied to it. Pure Python.

An answer is graded once an item is applied to it. Its grade belongs to the text it was given
for: an answer whose text changed since (a resubmission) is ungraded again, its earlier grade
kept to be shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from grader.spec.questions import Question, RubricItem

WrittenStatus = Literal["graded", "ungraded", "changed"]


@dataclass(frozen=True)
class WrittenGrade:
    """One answer's grade: the items applied (with their points as the rubric says now), the
    comment, and the points they give (None until graded). ``changed``: graded, but for a text
    the notebook no longer has; ``earlier_points`` is what that text got."""

    question: str
    status: WrittenStatus
    points: float | None
    max_points: float
    items: tuple[RubricItem, ...] = ()
    comment: str = ""
    earlier_points: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def written_grade(
    question: Question,
    items: Sequence[RubricItem],
    comment: str = "",
    earlier_items: Sequence[RubricItem] | None = None,
) -> WrittenGrade:
    """The grade of an answer given ``items`` (none: not graded yet); ``earlier_items``: those an
    earlier text of the answer was given, if it changed since."""
    earlier = question_points(question, earlier_items) if earlier_items else None
    if items:
        points = question_points(question, items)
        return WrittenGrade(question.id, "graded", points, question.points, tuple(items), comment)
    status: WrittenStatus = "changed" if earlier is not None else "ungraded"
    return WrittenGrade(question.id, status, None, question.points, (), comment, earlier)


def question_points(question: Question, items: Sequence[RubricItem]) -> float:
    """Gradescope's rule: from 0 (positive scoring) or the question's points (negative), plus
    every item applied, kept within 0 and the question's points."""
    start = 0.0 if question.scoring == "positive" else question.points
    return min(question.points, max(0.0, start + sum(item.points for item in items)))
