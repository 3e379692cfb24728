"""A class holding hostile text and names, graded for real (quick, ``--jobs 2``, twice): the
batch finishes with a result for each notebook, ``grader check --json`` gives one for each, and
the review sheet goes out and back in unchanged. The notebooks' text is what stopped whole
classes before: a lone surrogate in markdown and code, bytes that are not UTF-8 in a file name
and in what the kernel prints, control and bidi characters, lines that made the readers of the
text quadratic, and a name a spreadsheet would run as a formula."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from click.testing import CliRunner

from grader.cli import cli
from tests.run.test_hostile_batch import model_1

# A class graded twice and every notebook checked alone: minutes, with the slow tests (the fuzz test
# takes hostile text through the same host steps in the default run)
pytestmark = [pytest.mark.kernel, pytest.mark.slow]

HOSTILE_MARKDOWN = (
    "## Answers\n1. Model 2 is better \ud800 because\x00 \u202egpj.exe \u0301\n"
    + " " * 15_000 + "\n" + "\t" * 15_000 + "1)\n" + "model_1 has " + "1" * 40_000 + ".5 parameters\n"
    + "BEGIN QUESTION" + "\n" * 50_000 + "name: q1"
)  # fmt: skip
NAMES = (b"honest", b"hostile_text", b"bad\xff\xfename", b"'=HYPERLINK(1)", b"\xe2\x80\xaereversed")


def hostile_text() -> nbformat.NotebookNode:
    notebook = model_1("import sys\nprint('\\udcff not UTF-8'); sys.stdout.write('\\u202e bidi \\x00 NUL\\n')")
    notebook.cells.append(nbformat.v4.new_markdown_cell(HOSTILE_MARKDOWN))
    notebook.cells.append(nbformat.v4.new_code_cell("# a comment with a surrogate \udfff\nx = '\ud83d'"))
    notebook.cells.append(
        nbformat.v4.new_code_cell("raise ValueError('[/] closes no tag of [bold]the console[/bold]')")
    )
    return notebook


@pytest.fixture(scope="module")
def graded(mnist_path, tmp_path_factory):
    folder, out = tmp_path_factory.mktemp("hostile-text"), tmp_path_factory.mktemp("reports")
    for name in NAMES:
        notebook = hostile_text() if name == b"hostile_text" else model_1()
        with open(os.fsencode(folder) + b"/" + name + b".ipynb", "w", encoding="utf-8") as file:
            file.write(json.dumps(notebook))  # a lone surrogate as its escape
    arguments = ["grade", str(folder), "--out", str(out), "--quick", "--jobs", "2", "--data", str(mnist_path)]
    runs = [CliRunner().invoke(cli, arguments) for _ in range(2)]
    return {"folder": folder, "out": out, "runs": runs, "mnist": mnist_path}


def test_the_class_is_graded_whole_twice_with_every_output(graded):
    for run in graded["runs"]:
        assert run.exit_code == 0, run.output
    assert f"Reused {len(NAMES)} earlier results" in graded["runs"][1].output
    results = {r["id"]: r for r in json.loads((graded["out"] / "results.json").read_text())["submissions"]}
    assert set(results) == {"honest", "hostile_text", "bad\\xff\\xfename", "'=HYPERLINK(1)", "\\u202ereversed"}
    assert {(r["status"], r["score"]) for r in results.values()} == {("graded", 5.0)}
    assert any("lone surrogates" in warning for warning in results["hostile_text"]["warnings"])
    for written in graded["out"].rglob("*"):
        if written.suffix in (".html", ".csv", ".json"):
            written.read_bytes().decode("utf-8")
    assert len(list((graded["out"] / "submissions").glob("*.html"))) == len(NAMES)


def test_grader_check_gives_a_json_result_for_each_notebook(graded):
    for path in sorted(graded["folder"].iterdir()):
        checked = CliRunner().invoke(cli, ["check", str(path), "--json", "--data", str(graded["mnist"])])
        assert checked.exit_code == 1, checked.output  # model_1 alone: the other models' checks fail
        assert (json.loads(checked.output)["status"], json.loads(checked.output)["score"]) == ("graded", 5.0)


def test_grader_check_prints_the_notebooks_own_text_as_text(graded):
    checked = CliRunner().invoke(
        cli, ["check", str(graded["folder"] / "hostile_text.ipynb"), "--data", str(graded["mnist"])]
    )
    assert checked.exit_code == 1, checked.output
    assert "ValueError: [/] closes no tag of [bold]the console[/bold]" in " ".join(checked.output.split())


def test_the_review_sheet_goes_out_and_back_in_unchanged(graded, tmp_path):
    sheet = tmp_path / "sheet.csv"
    exported = CliRunner().invoke(cli, ["review", str(graded["out"]), "--export", str(sheet)])
    assert exported.exit_code == 0, exported.output
    imported = CliRunner().invoke(cli, ["review", str(graded["out"]), "--import", str(sheet)])
    assert imported.exit_code == 0, imported.output
    assert "Set the grades of 0 answers" in imported.output
