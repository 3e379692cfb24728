"""The spreadsheet round trip: every answer out with a column per rubric item, back in with
items marked x and the points recomputed, errors that name the row, no formula in any cell."""

from __future__ import annotations

import csv
import io
import json

import pytest

from grader.errors import GraderError
from grader.review.batch import ReviewBatch
from grader.review.marks import Marks
from grader.review.sheet import export_sheet, import_sheet

ACCURACY = "item: q1/compares-their-accuracy"
PICKS = "item: q1/picks-one-for-production-with-a-reason"


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


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
    rows = list(csv.reader(io.StringIO(export_sheet(batch, marks))))
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
    text = export_sheet(batch, Marks(batch_folder, batch.questions))
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert '\'=HYPERLINK("http://evil.example","click")' in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
    # And it still reads back, unchanged: the guard is taken off on import.
    assert import_sheet(text, batch, Marks(batch_folder, batch.questions)) == 0


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
