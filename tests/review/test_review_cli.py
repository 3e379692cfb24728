"""`grader review`'s command line: the spreadsheet round trip, and clear errors for a folder
that holds no graded batch or for both directions at once."""

from __future__ import annotations

import csv
import io

from click.testing import CliRunner

from grader.cli import cli
from grader.review.batch import ReviewBatch
from grader.review.marks import Marks


def test_export_then_import_through_the_command_line(batch_folder, tmp_path):
    sheet = tmp_path / "sheet.csv"
    exported = CliRunner().invoke(cli, ["review", str(batch_folder), "--export", str(sheet)])
    assert exported.exit_code == 0, exported.output
    assert "Wrote 60 answers" in exported.output
    rows = list(csv.reader(io.StringIO(sheet.read_text())))
    rows[1][rows[0].index("item: q1/compares-their-accuracy")] = "x"
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    sheet.write_text(buffer.getvalue())
    imported = CliRunner().invoke(cli, ["review", str(batch_folder), "--import", str(sheet)])
    assert imported.exit_code == 0, imported.output
    batch = ReviewBatch.load(batch_folder)
    assert Marks(batch_folder, batch.questions).grades(batch.answers())[rows[1][0]][0].points == 1


def test_a_folder_without_a_graded_batch_says_what_to_do(tmp_path):
    outcome = CliRunner().invoke(cli, ["review", str(tmp_path), "--export", str(tmp_path / "s.csv")])
    assert outcome.exit_code == 3
    assert "holds no graded batch" in outcome.output and "grader grade" in outcome.output


def test_export_and_import_at_once_is_a_usage_error(batch_folder, tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("")
    outcome = CliRunner().invoke(cli, ["review", str(batch_folder), "--export", str(sheet), "--import", str(sheet)])
    assert outcome.exit_code == 2 and "not both" in outcome.output
