"""`grader review`'s command line: the spreadsheet round trip, and clear errors for a folder
that holds no graded batch or for both directions at once."""

from __future__ import annotations

import codecs
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


def test_the_exported_sheet_is_utf8_behind_a_bom_and_reads_back_in_windows_1252(batch_folder, tmp_path):
    sheet = tmp_path / "sheet.csv"
    assert CliRunner().invoke(cli, ["review", str(batch_folder), "--export", str(sheet)]).exit_code == 0
    exported = sheet.read_bytes()
    assert exported.startswith(codecs.BOM_UTF8)  # so that Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"), newline="")))
    rows[1][rows[0].index("comment")] = "Très “bien”, 5 €"
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    sheet.write_bytes(buffer.getvalue().encode("cp1252"))  # as Excel's "CSV (comma delimited)" saves it
    imported = CliRunner().invoke(cli, ["review", str(batch_folder), "--import", str(sheet)])
    assert imported.exit_code == 0, imported.output
    batch = ReviewBatch.load(batch_folder)
    assert Marks(batch_folder, batch.questions).grades(batch.answers())[rows[1][0]][0].comment == "Très “bien”, 5 €"


def test_an_undecodable_sheet_is_a_clear_error_not_a_traceback(batch_folder, tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(b"submission,student,question,answer,comment\r\nstudent00,\x81\x8d,q1,,\r\n")
    outcome = CliRunner().invoke(cli, ["review", str(batch_folder), "--import", str(sheet)])
    assert outcome.exit_code == 3 and outcome.exception is not None and isinstance(outcome.exception, SystemExit)
    assert "CSV UTF-8" in outcome.output and "Traceback" not in outcome.output
