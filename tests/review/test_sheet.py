"""The spreadsheet round trip: every answer out with a column per rubric item, back in with
items marked x and the points recomputed, errors that name the row, no formula in any cell."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.errors import GraderError
from grader.reports.gradebooks import plain_cell
from grader.review.batch import ReviewBatch
from grader.review.marks import Marks
from grader.review.sheet import export_sheet, import_sheet, sheet_cell

ACCURACY = "item: q1/compares-their-accuracy"
PICKS = "item: q1/picks-one-for-production-with-a-reason"


def text_of(sheet: bytes) -> str:
    """An exported sheet's text: UTF-8 behind a BOM."""
    assert sheet.startswith(codecs.BOM_UTF8)
    return sheet.decode("utf-8-sig")


def rows_of(sheet: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text_of(sheet), newline="")))


def test_a_sheet_marked_by_hand_comes_back_as_grades(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    rows = rows_of(export_sheet(batch, marks))
    assert len(rows) == 20 * 3 and rows[0]["answer"].startswith("Model 2 is better")
    for row in rows:
        if row["submission"] == "student01" and row["question"] == "q1":
            row.update({ACCURACY: "x", PICKS: " X ", "comment": "Good.", "points": "99"})  # points are not read
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    assert import_sheet(buffer.getvalue(), batch, marks) == 1  # the one row changed
    grade = marks.grades(batch.answers())["student01"][0]
    assert (grade.points, grade.comment) == (2.0, "Good.")
    again = {(r["submission"], r["question"]): r for r in rows_of(export_sheet(batch, marks))}
    assert again["student01", "q1"][ACCURACY] == "x" and again["student01", "q1"]["points"] == "2"


def sheet_with(batch_folder, change) -> tuple[str, ReviewBatch, Marks]:
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    rows = list(csv.reader(io.StringIO(text_of(export_sheet(batch, marks)), newline="")))
    change(rows)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue(), batch, marks


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows[3].__setitem__(0, "mallory"), "row 4 .* submission 'mallory'"),
        (lambda rows: rows[2].__setitem__(2, "q7"), "row 3 .* question 'q7'"),
        (lambda rows: rows[0].__setitem__(4, "item: q1/invented"), "column 'item: q1/invented'"),
        (lambda rows: rows[2].__setitem__(4, "yes"), "row 3, column 'item: q1/compares-their-accuracy'"),
    ],
)
def test_a_wrong_row_is_an_error_that_names_it_and_changes_nothing(batch_folder, change, message):
    def mark_first_then(rows: list[list[str]]) -> None:
        rows[1][4] = "x"  # a valid mark, which must not be kept when a later row fails
        change(rows)

    text, batch, marks = sheet_with(batch_folder, mark_first_then)
    with pytest.raises(GraderError, match=message):
        import_sheet(text, batch, marks)
    assert all(grade.status == "ungraded" for grades in marks.grades(batch.answers()).values() for grade in grades)


def test_no_cell_of_the_sheet_starts_a_formula(batch_folder):
    results = batch_folder / "results.json"
    data = json.loads(results.read_text())
    data["submissions"][0]["answers"][0]["text"] = '=HYPERLINK("http://evil.example","click")'
    results.write_text(json.dumps(data))
    batch = ReviewBatch.load(batch_folder)
    sheet = export_sheet(batch, Marks(batch_folder, batch.questions))
    cells = [cell for row in csv.reader(io.StringIO(text_of(sheet), newline="")) for cell in row]
    assert '\'=HYPERLINK("http://evil.example","click")' in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
    # And it still reads back, unchanged: the guard is taken off on import.
    assert import_sheet(sheet, batch, Marks(batch_folder, batch.questions)) == 0


def rewritten(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def test_a_row_graded_in_the_app_since_the_export_is_not_overwritten(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    rows = rows_of(export_sheet(batch, marks))
    marks.apply("q1", "picks-one-for-production-with-a-reason", [("student00", batch.answer("student00", "q1"))], True)
    rows[0][ACCURACY] = "x"  # student00's q1, graded otherwise in the app meanwhile
    with pytest.raises(GraderError, match="row 2: student00's answer to q1 was graded otherwise since"):
        import_sheet(rewritten(rows), batch, marks)
    rows[0]["grade digest"] = ""  # the way to overwrite it on purpose
    assert import_sheet(rewritten(rows), batch, marks) == 1
    assert [item.id for item in marks.grades(batch.answers())["student00"][0].items] == ["compares-their-accuracy"]


def test_a_row_whose_answer_was_resubmitted_since_the_export_is_refused(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    rows = rows_of(export_sheet(batch, Marks(batch_folder, batch.questions)))
    results = batch_folder / "results.json"
    data = json.loads(results.read_text())
    data["submissions"][0]["answers"][0]["text"] = "A resubmitted answer."
    results.write_text(json.dumps(data))
    batch = ReviewBatch.load(batch_folder)
    rows[0][ACCURACY] = "x"
    with pytest.raises(GraderError, match="row 2: student00's answer to q1 changed since the sheet was exported"):
        import_sheet(rewritten(rows), batch, Marks(batch_folder, batch.questions))


def edited(batch_folder: Path, change: Callable[[dict[str, Any]], None]) -> tuple[ReviewBatch, Marks]:
    """The batch after ``change`` to its results.json, and its marks."""
    results = batch_folder / "results.json"
    data = json.loads(results.read_text())
    change(data)
    results.write_text(json.dumps(data))
    batch = ReviewBatch.load(batch_folder)
    return batch, Marks(batch_folder, batch.questions)


def cells_of(sheet: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text_of(sheet), newline="")))


def written(rows: list[list[str]], encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    """A sheet as a spreadsheet saves it again: CSV in ``encoding``."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    return buffer.getvalue().encode(encoding)


def test_an_answer_longer_than_the_csv_readers_default_limit_reads_back(batch_folder):
    long_answer = "Model 2 is better. " * 10_000  # 190,000 characters: over the default field limit of 131,072

    def lengthen(data: dict[str, Any]) -> None:
        data["submissions"][0]["answers"][0]["text"] = long_answer

    batch, marks = edited(batch_folder, lengthen)
    sheet = export_sheet(batch, marks)
    assert import_sheet(sheet, batch, marks) == 0
    rows = cells_of(sheet)
    rows[1][rows[0].index(ACCURACY)] = "x"
    assert import_sheet(written(rows), batch, marks) == 1
    assert marks.grades(batch.answers())["student00"][0].points == 1


STRANGE_TEXTS = ["'=HYPERLINK(1)", "'quoted", "=SUM(A1)", "-3", "+x", "''", "@me", "\tindented", "'", "plain"]


@pytest.mark.parametrize("strange", STRANGE_TEXTS)
def test_a_cell_reads_back_exactly_as_it_was_whatever_it_begins_with(strange):
    cell = sheet_cell(strange)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or cell == "-3"  # a number is written as one
    assert plain_cell(cell) == strange


@pytest.mark.parametrize("strange", STRANGE_TEXTS)
def test_a_submission_id_and_a_comment_come_back_from_the_sheet_unchanged(batch_folder, strange):
    def rename(data: dict[str, Any]) -> None:
        data["submissions"][1]["id"] = strange  # a notebook named f"{strange}.ipynb"

    batch, marks = edited(batch_folder, rename)
    marks.set_comment(strange, batch.answer(strange, "q1"), strange + " comment")
    sheet = export_sheet(batch, marks)
    assert import_sheet(sheet, batch, marks) == 0  # left as exported: nothing changes
    rows = cells_of(sheet)
    row = next(row for row in rows if plain_cell(row[0]) == strange and row[2] == "q1")
    assert plain_cell(row[rows[0].index("comment")]) == (strange + " comment").strip()  # comments are kept stripped
    row[rows[0].index(ACCURACY)] = "x"
    row[rows[0].index("comment")] = sheet_cell(strange)
    assert import_sheet(written(rows), batch, marks) == 1
    grade = marks.grades(batch.answers())[strange][0]
    assert (grade.points, grade.comment) == (1, strange.strip())


NON_ASCII_ANSWER = "Modèle 2 — “précis”, et ça coûte 5 €; Größe: über"
NON_ASCII_COMMENT = "Très “bien”: 5 € für Größe"


def with_non_ascii_answer(data: dict[str, Any]) -> None:
    data["submissions"][0]["answers"][0]["text"] = NON_ASCII_ANSWER


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [
        ("utf-8", ","),
        ("utf-8-sig", ","),
        ("utf-16", ","),  # with a BOM, in this machine's byte order
        ("utf-16", "\t"),  # Excel's "Unicode text"
        ("utf-16-le", ","),  # no BOM
        ("utf-16-be", ","),  # no BOM
        ("cp1252", ","),  # Excel's "CSV" on Windows
        ("cp1252", ";"),  # the same where the decimal separator is a comma
    ],
)
def test_a_sheet_saved_in_what_spreadsheets_write_is_read(batch_folder, encoding, delimiter):
    batch, marks = edited(batch_folder, with_non_ascii_answer)
    rows = cells_of(export_sheet(batch, marks))
    assert rows[1][3] == NON_ASCII_ANSWER
    rows[1][rows[0].index(ACCURACY)] = "x"
    rows[1][rows[0].index("comment")] = NON_ASCII_COMMENT
    assert import_sheet(written(rows, encoding, delimiter), batch, marks) == 1
    grade = marks.grades(batch.answers())["student00"][0]
    assert (grade.points, grade.comment) == (1, NON_ASCII_COMMENT)


@pytest.mark.parametrize(("bom", "encoding"), [(codecs.BOM_UTF16_BE, "utf-16-be"), (codecs.BOM_UTF16_LE, "utf-16-le")])
def test_a_sheet_saved_with_a_utf16_bom_in_either_byte_order_is_read(batch_folder, bom, encoding):
    batch, marks = edited(batch_folder, with_non_ascii_answer)
    rows = cells_of(export_sheet(batch, marks))
    rows[1][rows[0].index("comment")] = NON_ASCII_COMMENT
    assert import_sheet(bom + written(rows, encoding), batch, marks) == 1
    assert marks.grades(batch.answers())["student00"][0].comment == NON_ASCII_COMMENT


def test_a_sheet_imported_again_changes_nothing_more(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    rows = cells_of(export_sheet(batch, marks))
    rows[1][rows[0].index(ACCURACY)] = "x"
    assert import_sheet(written(rows), batch, marks) == 1
    assert import_sheet(written(rows), batch, marks) == 0  # its grade is the row's already: not "graded otherwise"


@pytest.mark.parametrize(
    "undecodable",
    [
        b"submission,student,question,answer\r\nstudent00,\x81,q1,\r\n",  # no character in any encoding we read
        codecs.BOM_UTF8 + b"submission,student,question,answer\r\n\xff\xfe,",  # not UTF-8 behind a UTF-8 BOM
        codecs.BOM_UTF16_LE + "submission,".encode("utf-16-le") + b"\x00\xd8",  # a lone surrogate
    ],
)
def test_a_sheet_in_another_encoding_is_refused_saying_how_to_save_it(batch_folder, undecodable):
    batch = ReviewBatch.load(batch_folder)
    with pytest.raises(GraderError, match='save the sheet as "CSV UTF-8'):
        import_sheet(undecodable, batch, Marks(batch_folder, batch.questions))


def test_digests_are_written_so_that_no_spreadsheet_reads_a_number_and_old_bare_ones_still_read(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    marks.set_comment("student00", batch.answer("student00", "q1"), "Good.")
    rows = rows_of(export_sheet(batch, marks))
    for row in rows:
        assert re.fullmatch(r"a:[0-9a-f]{16}", row["answer digest"]), row["answer digest"]
        assert re.fullmatch(r"g:[0-9a-f]{12}", row["grade digest"]), row["grade digest"]
    for row in rows:  # as a sheet of an older grader has them
        row["answer digest"] = row["answer digest"].removeprefix("a:")
        row["grade digest"] = row["grade digest"].removeprefix("g:")
    assert import_sheet(rewritten(rows), batch, marks) == 0
    rows[0]["comment"] = "Better."
    assert import_sheet(rewritten(rows), batch, marks) == 1
    assert marks.grades(batch.answers())["student00"][0].comment == "Better."


def test_an_import_lists_every_problem_of_the_sheet_and_changes_nothing(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    rows = cells_of(export_sheet(batch, marks))
    rows[1][rows[0].index(ACCURACY)] = "x"  # valid, and not kept
    rows[2][0] = "mallory"
    rows[3][2] = "q7"
    rows[4][rows[0].index(ACCURACY)] = "yes"
    rows[5][rows[0].index(ACCURACY)] = "x"  # row 6 is student00's q2: an item of q1
    rows.append(list(rows[1]))  # row 62 repeats row 2
    with pytest.raises(GraderError) as raised:
        import_sheet(written(rows), batch, marks)
    message = str(raised.value)
    assert "5 problems" in message and "nothing changed" in message
    for expected in ("row 3 ", "row 4 ", "row 5, column", "row 6 marks", "row 62 repeats row 2"):
        assert expected in message
    assert all(grade.status == "ungraded" for grades in marks.grades(batch.answers()).values() for grade in grades)


def test_a_sheet_with_many_problems_lists_fifty_and_counts_the_rest(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    rows = cells_of(export_sheet(batch, marks))
    for row in rows[1:]:
        row[0] = "nobody"
    with pytest.raises(GraderError, match=r"60 problems") as raised:
        import_sheet(written(rows), batch, marks)
    assert str(raised.value).count("names the submission 'nobody'") == 50
    assert str(raised.value).endswith("and 10 more")


def test_hostile_text_in_answers_and_comments_exports_and_imports(batch_folder):
    hostile = "nul \x00 escape \x1b[31m bidi \u202eevil\u202c cr \r lf \n tab \t bell \x07 " + "long " * 50_000

    def hostile_answers(data: dict[str, Any]) -> None:
        data["submissions"][0]["answers"][0]["text"] = hostile
        data["submissions"][1]["answers"][0]["text"] = "lone \ud800 surrogate"

    batch, marks = edited(batch_folder, hostile_answers)
    marks.set_comment("student00", batch.answer("student00", "q1"), hostile)
    sheet = export_sheet(batch, marks)
    rows = cells_of(sheet)
    assert rows[1][3] == hostile.replace("\x00", "\ufffd") and rows[4][3] == "lone \ufffd surrogate"
    assert import_sheet(sheet, batch, marks) == 0  # left as exported, NUL and all
    rows[1][rows[0].index(ACCURACY)] = "x"
    assert import_sheet(written(rows), batch, marks) == 1
    assert marks.grades(batch.answers())["student00"][0].points == 1


def test_a_cell_that_breaks_the_csv_format_is_an_error_that_names_its_row(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    sheet = b"submission,student,question,answer,comment\r\n" + b'student00,s,q1,"' + b"a" * (21 * 2**20) + b'"\r\n'
    with pytest.raises(GraderError, match="line 2 of the sheet cannot be read as CSV"):
        import_sheet(sheet, batch, Marks(batch_folder, batch.questions))
