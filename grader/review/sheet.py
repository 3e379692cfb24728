"""The written answers as a spreadsheet, for those who grade in one: one row per answer, a
column per rubric item marked ``x`` where it applies, a comment. Read back, the points are
computed from the items, never taken from the sheet; every cell is written so that no
spreadsheet runs it as a formula, and so that it reads back exactly as it was."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from collections.abc import Sequence

from grader.errors import GraderError
from grader.ingest.notebook import MAX_NOTEBOOK_BYTES
from grader.protocol.text import REPLACEMENT, encodable
from grader.reports.gradebooks import plain_cell, points_text, spreadsheet_cell
from grader.review.batch import ReviewBatch
from grader.review.marks import Marks

FIXED_COLUMNS = ("submission", "student", "question", "answer")
ITEM_PREFIX = "item: "
MARKED = "x"
# The digest of the answer's text, and of its grade, when the sheet was written: an import
# changes neither a resubmitted answer nor one graded since in the app.
ANSWER_COLUMN = "answer digest"
EXPORTED_COLUMN = "grade digest"
# A digest is written behind a letter: bare hex such as "1234e5" is a number to a spreadsheet.
ANSWER_DIGEST_PREFIX = "a:"
GRADE_DIGEST_PREFIX = "g:"
# How a spreadsheet may separate the cells: by locale, by comma, semicolon, or tab (Excel's "Unicode text").
DELIMITERS = ",;\t"
SAVE_AS = 'save the sheet as "CSV UTF-8 (comma delimited)" (Excel) or as CSV with the character set UTF-8'
# An import lists this many of its problems, then how many more there are.
LISTED_PROBLEMS = 50


def export_sheet(batch: ReviewBatch, marks: Marks) -> bytes:
    """The sheet as a file's bytes, UTF-8 behind a BOM (so that Excel reads it as UTF-8): the
    columns above, then ``item: <id>`` per item of every question, comment, points, digests."""
    questions = [marks.question(question.id) for question in batch.questions]
    item_columns = list(dict.fromkeys(f"{ITEM_PREFIX}{q.id}/{item.id}" for q in questions for item in q.rubric))
    grades = marks.grades(batch.answers())
    buffer = io.StringIO()
    # "\r\n" as RFC 4180 has it; with "\n", Python's writer leaves a cell holding "\r" unquoted.
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = (*FIXED_COLUMNS, *item_columns, "comment", "points", ANSWER_COLUMN, EXPORTED_COLUMN)
    writer.writerow([sheet_cell(cell) for cell in header])
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
                ANSWER_DIGEST_PREFIX + answer.digest,
                GRADE_DIGEST_PREFIX + _state([item.id for item in grade.items], grade.comment),
            ]
            writer.writerow([sheet_cell(cell) for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def sheet_cell(text: str) -> str:
    """``text`` as a cell: writable (NUL and lone surrogates as U+FFFD) and guarded
    (``spreadsheet_cell``); ``plain_cell`` gives the writable text back exactly."""
    return spreadsheet_cell(_writable(text))


def _writable(text: str) -> str:
    # A spreadsheet cuts a cell at NUL; UTF-8 cannot hold a lone surrogate
    return encodable(text).replace("\x00", REPLACEMENT)


def sheet_text(data: bytes) -> str:
    """The text of a sheet file as spreadsheets save one: UTF-8 (with or without a BOM), UTF-16
    (with a BOM, or none before its "submission" header), or Windows-1252 (Excel's plain "CSV"
    in western Europe and the Americas); other bytes are refused, saying how to save the sheet."""
    if data.startswith(codecs.BOM_UTF8):
        return _decoded(data[len(codecs.BOM_UTF8) :], "utf-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decoded(data, "utf-16")
    # The header is ASCII: UTF-16 without a BOM begins with a NUL byte beside each of its letters.
    if data[1:2] == b"\0" and data[:1] != b"\0":
        return _decoded(data, "utf-16-le")
    if data[:1] == b"\0" and data[1:2] != b"\0":
        return _decoded(data, "utf-16-be")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")  # decodes every byte but 0x81, 0x8D, 0x8F, 0x90 and 0x9D
    except UnicodeDecodeError as error:
        raise GraderError(
            f"the sheet is neither UTF-8, UTF-16 nor Windows-1252 text (byte 0x{data[error.start]:02X} at offset "
            f"{error.start}): {SAVE_AS}, then import it again"
        ) from None


def _decoded(data: bytes, encoding: str) -> str:
    """``data`` in ``encoding``, which its BOM or its first bytes name; refused where it is not."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise GraderError(
            f"the sheet is not valid {encoding.upper()} ({error.reason} at byte offset {error.start}): "
            f"{SAVE_AS}, then import it again"
        ) from None


def import_sheet(sheet: bytes | str, batch: ReviewBatch, marks: Marks) -> int:
    """Apply a sheet written by ``export_sheet`` (and edited): its file's bytes (``sheet_text``)
    or its text; the number of answers it changed. A row left as exported changes nothing. A
    row naming an unknown submission, question or item, a mark other than ``x``, an answer
    changed since the export (a resubmission) or graded otherwise since (in the app) is a
    problem; the error lists every problem of the sheet, and nothing is changed."""
    rows = _rows(sheet_text(sheet) if isinstance(sheet, bytes) else sheet)
    if not rows or [plain_cell(cell).strip() for cell in rows[0][: len(FIXED_COLUMNS)]] != list(FIXED_COLUMNS):
        raise GraderError(
            f"the sheet's first row must begin with {', '.join(FIXED_COLUMNS)}: "
            "write one with `grader review OUT --export sheet.csv`"
        )
    header = [plain_cell(cell).strip() for cell in rows[0]]
    if "comment" not in header:
        raise GraderError("the sheet has no 'comment' column; export a new one to see its layout")
    problems: list[str] = []
    questions = {question.id: marks.question(question.id) for question in batch.questions}
    item_columns: dict[int, tuple[str, str]] = {}
    for index, column in enumerate(header):
        if column.startswith(ITEM_PREFIX):
            question_id, _, item_id = column[len(ITEM_PREFIX) :].partition("/")
            if question_id not in questions or item_id not in {item.id for item in questions[question_id].rubric}:
                problems.append(f"the sheet's column {_shown(column)} names no rubric item of the batch's questions")
            else:
                item_columns[index] = (question_id, item_id)
    comment_at = header.index("comment")
    answer_at = header.index(ANSWER_COLUMN) if ANSWER_COLUMN in header else None
    exported_at = header.index(EXPORTED_COLUMN) if EXPORTED_COLUMN in header else None
    current = {
        (submission, grade.question): grade
        for submission, graded in marks.grades(batch.answers()).items()
        for grade in graded
    }
    # A submission by its id as the sheet writes it: the same but for characters no sheet keeps.
    submissions = {_writable(submission): submission for submission in batch.submissions}
    seen: dict[tuple[str, str], int] = {}
    grades = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [plain_cell(cell) for cell in row] + [""] * (len(header) - len(row))
        submission = submissions.get(cells[0])
        question_id = cells[2]
        if submission is None:
            problems.append(f"row {number} of the sheet names the submission {_shown(cells[0])}, not in this batch")
            continue
        if question_id not in questions:
            problems.append(
                f"row {number} of the sheet names the question {_shown(question_id)}; known: {sorted(questions)}"
            )
            continue
        if (submission, question_id) in seen:
            problems.append(
                f"row {number} repeats row {seen[submission, question_id]}: {submission}'s answer to {question_id}; "
                "keep one of them"
            )
            continue
        seen[submission, question_id] = number
        items, marking = _items(number, cells, header, item_columns, question_id)
        if marking:
            problems.extend(marking)
            continue
        answer = batch.answer(submission, question_id)
        if answer_at is not None and _digest(cells[answer_at], ANSWER_DIGEST_PREFIX) != answer.digest:
            problems.append(
                f"row {number}: {submission}'s answer to {question_id} changed since the sheet was exported "
                "(a resubmission): export the sheet again"
            )
            continue
        comment = cells[comment_at].strip()
        exported = _digest(cells[exported_at], GRADE_DIGEST_PREFIX) if exported_at is not None else ""
        graded = current[submission, question_id]
        now = _state([item.id for item in graded.items], graded.comment)
        if _state(items, comment) in (exported, now):
            continue  # left as exported, or graded so already (a sheet imported again)
        if exported and now != exported:
            problems.append(
                f"row {number}: {submission}'s answer to {question_id} was graded otherwise since the sheet "
                "was exported (in `grader review`?): export the sheet again, or clear the row's last column "
                "to overwrite that grade"
            )
            continue
        grades.append((submission, answer, items, comment))
    if problems:
        listed = problems[:LISTED_PROBLEMS]
        more = f"\n  and {len(problems) - len(listed)} more" if len(problems) > len(listed) else ""
        raise GraderError(
            f"the sheet was not imported (nothing changed): {len(problems)} problem"
            f"{'s' if len(problems) > 1 else ''} to fix in it, then import it again:\n  " + "\n  ".join(listed) + more
        )
    marks.set_answers(grades)
    return len(grades)


def _rows(text: str) -> list[list[str]]:
    """The sheet's rows, its cells separated as its header's first cell is followed."""
    # A cell is at most an answer, and a notebook at most MAX_NOTEBOOK_BYTES: the default (128 KiB) is short of it.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_NOTEBOOK_BYTES))
    text = text.removeprefix("\ufeff")
    after = re.match(f'\\s*"?{FIXED_COLUMNS[0]}"?([{DELIMITERS}])', text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=after.group(1) if after else ",")
    try:
        return list(reader)
    except csv.Error as error:
        # A line, not a row: an answer's cell spans lines.
        raise GraderError(
            f"line {reader.line_num} of the sheet cannot be read as CSV ({error}): export the sheet again, "
            "or open it in a spreadsheet and save it as CSV"
        ) from None


def _items(
    number: int, cells: Sequence[str], header: Sequence[str], item_columns: dict[int, tuple[str, str]], question: str
) -> tuple[list[str], list[str]]:
    """The items row ``number`` marks for its answer to ``question``, and the problems of its marks."""
    items: list[str] = []
    problems: list[str] = []
    for index, (column_question, item_id) in item_columns.items():
        mark = cells[index].strip().lower()
        if mark not in ("", MARKED):
            problems.append(
                f"row {number}, column {_shown(header[index])}: mark an item with {MARKED!r} or leave it empty; "
                f"found {_shown(mark)}"
            )
        elif mark and column_question != question:
            problems.append(f"row {number} marks {_shown(header[index])}, an item of another question than {question}")
        elif mark:
            items.append(item_id)
    return items, problems


def _digest(cell: str, prefix: str) -> str:
    """A digest's hex, behind its ``prefix`` or bare (as sheets of an older grader wrote it)."""
    digest = cell.strip()
    return digest[len(prefix) :] if digest.startswith(prefix) else digest


def _state(item_ids: list[str], comment: str) -> str:
    """A digest of an answer's grade (its items and comment): what a row says it was exported
    with. The comment as the sheet writes it, so that a row left as exported matches."""
    return hashlib.sha256(json.dumps([sorted(item_ids), _writable(comment.strip())]).encode()).hexdigest()[:12]


def _shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, its controls escaped, cut at ``limit`` characters."""
    return repr(text[:limit]) + ("…" if len(text) > limit else "")
