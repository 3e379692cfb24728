"""The written answers as a spreadsheet, for those who grade in one: one row per answer, a
column per rubric item marked ``x`` where it applies, a comment. Read back, the points are
computed from the items, never taken from the sheet; every cell is written so that no
spreadsheet runs it as a formula."""

from __future__ import annotations

import csv
import hashlib
import io
import json

from grader.errors import GraderError
from grader.reports.gradebooks import FORMULA_STARTS, points_text, spreadsheet_cell
from grader.review.batch import ReviewBatch
from grader.review.marks import Marks

FIXED_COLUMNS = ("submission", "student", "question", "answer")
ITEM_PREFIX = "item: "
MARKED = "x"
# The digest of the answer's text, and of its grade, when the sheet was written: an import
# changes neither a resubmitted answer nor one graded since in the app.
ANSWER_COLUMN = "answer digest"
EXPORTED_COLUMN = "grade digest"


def export_sheet(batch: ReviewBatch, marks: Marks) -> str:
    """The sheet: the columns above, then ``item: <id>`` per item of every question, comment, points."""
    questions = [marks.question(question.id) for question in batch.questions]
    item_columns = list(dict.fromkeys(f"{ITEM_PREFIX}{q.id}/{item.id}" for q in questions for item in q.rubric))
    grades = marks.grades(batch.answers())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = (*FIXED_COLUMNS, *item_columns, "comment", "points", ANSWER_COLUMN, EXPORTED_COLUMN)
    writer.writerow([spreadsheet_cell(cell) for cell in header])
    for submission in batch.submissions:
        for question, grade in zip(questions, grades[submission], strict=True):
            applied = {f"{ITEM_PREFIX}{question.id}/{item.id}" for item in grade.items}
            answer = batch.answer(submission, question.id)
            row = [
                submission,
                batch.name(submission),
                question.id,
                answer.text,
                *(MARKED if column in applied else "" for column in item_columns),
                grade.comment,
                points_text(grade.points),
                answer.digest,
                _state([item.id for item in grade.items], grade.comment),
            ]
            writer.writerow([spreadsheet_cell(cell) for cell in row])
    return buffer.getvalue()


def import_sheet(text: str, batch: ReviewBatch, marks: Marks) -> int:
    """Apply a sheet written by ``export_sheet`` (and edited); the number of answers it changed.
    A row left as exported changes nothing. A row naming an unknown submission, question or
    item, a mark other than ``x``, an answer changed since the export (a resubmission) or graded
    otherwise since (in the app) is an error naming the row, and nothing is changed."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [_plain(cell) for cell in rows[0][: len(FIXED_COLUMNS)]] != list(FIXED_COLUMNS):
        raise GraderError(
            f"the sheet's first row must begin with {', '.join(FIXED_COLUMNS)}: "
            "write one with `grader review OUT --export sheet.csv`"
        )
    header = [_plain(cell) for cell in rows[0]]
    for required in ("comment",):
        if required not in header:
            raise GraderError(f"the sheet has no {required!r} column; export a new one to see its layout")
    questions = {question.id: marks.question(question.id) for question in batch.questions}
    item_columns: dict[int, tuple[str, str]] = {}
    for index, column in enumerate(header):
        if column.startswith(ITEM_PREFIX):
            question_id, _, item_id = column[len(ITEM_PREFIX) :].partition("/")
            if question_id not in questions or item_id not in {item.id for item in questions[question_id].rubric}:
                raise GraderError(f"the sheet's column {column!r} names no rubric item of the batch's questions")
            item_columns[index] = (question_id, item_id)
    comment_at = header.index("comment")
    answer_at = header.index(ANSWER_COLUMN) if ANSWER_COLUMN in header else None
    exported_at = header.index(EXPORTED_COLUMN) if EXPORTED_COLUMN in header else None
    current = {
        (submission, grade.question): grade
        for submission, graded in marks.grades(batch.answers()).items()
        for grade in graded
    }
    grades = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [_plain(cell) for cell in row] + [""] * (len(header) - len(row))
        submission, question_id = cells[0], cells[2]
        if submission not in batch.submissions:
            raise GraderError(f"row {number} of the sheet names the submission {submission!r}, not in this batch")
        if question_id not in questions:
            raise GraderError(
                f"row {number} of the sheet names the question {question_id!r}; known: {sorted(questions)}"
            )
        items = []
        for index, (column_question, item_id) in item_columns.items():
            mark = cells[index].strip().lower()
            if mark not in ("", MARKED):
                raise GraderError(
                    f"row {number}, column {header[index]!r}: mark an item with {MARKED!r} or leave it empty; "
                    f"found {mark!r}"
                )
            if mark and column_question != question_id:
                raise GraderError(
                    f"row {number} marks {header[index]!r}, an item of another question than {question_id}"
                )
            if mark:
                items.append(item_id)
        answer = batch.answer(submission, question_id)
        if answer_at is not None and cells[answer_at] != answer.digest:
            raise GraderError(
                f"row {number}: {submission}'s answer to {question_id} changed since the sheet was exported "
                "(a resubmission): export the sheet again"
            )
        comment = cells[comment_at].strip()
        exported = cells[exported_at].strip() if exported_at is not None else ""
        if exported:
            if _state(items, comment) == exported:
                continue  # left as exported
            now = current[submission, question_id]
            if _state([item.id for item in now.items], now.comment) != exported:
                raise GraderError(
                    f"row {number}: {submission}'s answer to {question_id} was graded otherwise since the sheet "
                    "was exported (in `grader review`?): export the sheet again, or clear the row's last column "
                    "to overwrite that grade"
                )
        grades.append((submission, answer, items, comment))
    marks.set_answers(grades)
    return len(grades)


def _state(item_ids: list[str], comment: str) -> str:
    """A digest of an answer's grade (its items and comment): what a row says it was exported with."""
    return hashlib.sha256(json.dumps([sorted(item_ids), comment.strip()]).encode()).hexdigest()[:12]


def _plain(cell: str) -> str:
    """A cell as it was before ``spreadsheet_cell`` guarded it: the ``'`` before a formula's start."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell
