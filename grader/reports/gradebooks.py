"""The CSV files of a run: the gradebooks Canvas and Moodle import, and every check's points.
A notebook the grader failed on is blank in each, never 0. No cell starts a formula: what a
spreadsheet would read as one (a student's name or folder beginning with ``=``, say) is
written behind a ``'``, as OWASP advises against CSV injection."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from grader.judge.results import GradeRun, SubmissionResult
from grader.judge.written import WrittenGrade

# How a cell that a spreadsheet would run as a formula begins (OWASP's list)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"
# Written behind a GUARD: a formula's start, and the guard itself, so that ``plain_cell`` gives
# every text back exactly ("'=x" was "'=x", not "=x")
GUARDED_STARTS = (*FORMULA_STARTS, GUARD)


def spreadsheet_cell(value: object) -> str:
    """``value`` as a CSV cell no spreadsheet runs: one that would begin a formula (or begins
    with the guard) is written behind a ``'``, unless it is a finite number (``-3``)."""
    text = str(value)
    if not text.startswith(GUARDED_STARTS) or _finite_number(text):
        return text
    return GUARD + text


def plain_cell(cell: str) -> str:
    """A cell as it was before ``spreadsheet_cell`` guarded it."""
    return cell[1:] if cell.startswith(GUARD) and cell[1:].startswith(GUARDED_STARTS) else cell


def _finite_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))  # "-inf" is a formula's start to a spreadsheet
    except ValueError:
        return False


class _SafeWriter:
    """``csv.writer`` whose every cell is a ``spreadsheet_cell``."""

    def __init__(self, buffer: io.StringIO) -> None:
        self._writer = csv.writer(buffer, lineterminator="\n")

    def writerow(self, cells: Iterable[object]) -> None:
        self._writer.writerow([spreadsheet_cell(cell) for cell in cells])


@dataclass(frozen=True)
class Assignment:
    """The LMS assignment the grades go to: its title, and Canvas' id for it if known (Canvas
    then fills that assignment instead of creating one)."""

    title: str
    canvas_id: str | None = None


def gradebook_csv(run: GradeRun, assignment: Assignment) -> str:
    """Canvas' gradebook import: ``Student, ID, SIS User ID, SIS Login ID, Section``, then the
    assignment's column, a ``Points Possible`` row, one row per submission.

    Canvas matches a row by ``ID`` (its user id, known from a Canvas download), else by ``SIS
    Login ID``, which holds the submission's id (a notebook's file name, elsewhere).
    """
    buffer = io.StringIO()
    writer = _SafeWriter(buffer)
    title = f"{assignment.title} ({assignment.canvas_id})" if assignment.canvas_id else assignment.title
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", title])
    points = (
        run.max_total
        if run.max_total is not None
        else max((result.max_score for result in run.submissions if result.max_score is not None), default=0)
    )
    writer.writerow(["    Points Possible", "", "", "", "", f"{points:g}"])
    for result in run.submissions:
        student = result.student
        canvas = student is not None and student.platform == "canvas"
        name = student.name if student else result.id
        writer.writerow(
            [name, student.user_id if canvas and student else "", "", result.id, "", points_text(run.total(result))]
        )
    return buffer.getvalue()


MOODLE_COLUMNS = (
    "Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
    "Last modified (submission)", "Last modified (grade)", "Feedback comments",
)  # fmt: skip


def moodle_worksheet(run: GradeRun, graded_at: datetime) -> str | None:
    """Moodle's offline grading worksheet for the submissions of a Moodle download, their grade
    and a short feedback from the failed checks; None when none came from Moodle."""
    rows = [result for result in run.submissions if result.student and result.student.participant_id]
    if not rows:
        return None
    buffer = io.StringIO()
    writer = _SafeWriter(buffer)
    writer.writerow(MOODLE_COLUMNS)
    stamp = graded_at.strftime("%A, %d %B %Y, %I:%M %p")
    for result in rows:
        assert result.student is not None and result.student.participant_id is not None
        writer.writerow(
            [
                f"Participant {result.student.participant_id}",
                result.student.name,
                "",
                "Submitted for grading",
                points_text(run.total(result)),
                points_text(run.max_total_of(result)),
                "Yes",
                "",
                stamp,
                feedback(result, run),
            ]
        )
    return buffer.getvalue()


def feedback(result: SubmissionResult, run: GradeRun | None = None, limit: int = 800) -> str:
    """A short feedback for the student: the score and what failed, each check's message, then
    each written answer's points, rubric items and comment."""
    if result.score is None:
        return result.error or "Not graded."
    failed = [f"{check.id}: {check.message}" for check in result.checks if check.status in ("fail", "error")]
    text = f"{result.score:g}/{result.max_score:g}. " + (" ".join(failed) if failed else "Every check passed.")
    for grade in run.written.get(result.id, ()) if run is not None else ():
        if grade.points is not None:
            items = "; ".join(f"{item.title} ({item.points:+g})" for item in grade.items)
            comment = f" {grade.comment}" if grade.comment else ""
            text += f" {grade.question}: {grade.points:g}/{grade.max_points:g} ({items}).{comment}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def checks_csv(run: GradeRun) -> str:
    """Every check's points per submission, for a closer look than a gradebook gives."""
    check_ids = list(dict.fromkeys(check.id for result in run.submissions for check in result.checks))
    buffer = io.StringIO()
    writer = _SafeWriter(buffer)
    questions = [question.id for question in run.questions]
    totals = ["total", "max_total"] if questions else []
    writer.writerow(["id", "score", "max_score", "status", *check_ids, *questions, *totals])
    for result in run.submissions:
        points = {check.id: "" if check.status == "skipped" else f"{check.points:g}" for check in result.checks}
        written = {grade.question: grade for grade in run.written.get(result.id, ())}
        writer.writerow(
            [
                result.id,
                points_text(result.score),
                points_text(result.max_score),
                result.status,
                *(points.get(check_id, "") for check_id in check_ids),
                *(_written_points(written.get(question)) for question in questions),
                *([points_text(run.total(result)), points_text(run.max_total)] if questions else []),
            ]
        )
    return buffer.getvalue()


def points_text(value: float | None) -> str:
    """Points as a cell shows them (``2.5``), blank for none."""
    return "" if value is None else f"{value:g}"


def _written_points(grade: WrittenGrade | None) -> str:
    return "ungraded" if grade is None or grade.points is None else points_text(grade.points)
