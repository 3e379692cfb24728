"""Manual grades outlive the code's regrading: `grader grade` again brings them into the
gradebook, and a resubmission whose answer changed comes back ungraded beside its earlier
grade. The samples' quick grade (``graded_samples``) is reused: only the changed notebook runs."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from grader.batch.store import STORE_NAME
from grader.cli import cli
from grader.review.batch import ReviewBatch
from grader.review.marks import Marks
from tests.conftest import assert_follows_results_schema

pytestmark = pytest.mark.kernel


def grade(notebooks: Path, out: Path, mnist_path: Path) -> dict[str, str]:
    outcome = CliRunner().invoke(
        cli, ["grade", str(notebooks), "--out", str(out), "--quick", "--data", str(mnist_path)]
    )
    assert outcome.exit_code == 0, outcome.output
    rows = csv.DictReader(io.StringIO((out / "gradebook.csv").read_text()))
    return {row["SIS Login ID"]: list(row.values())[-1] for row in rows}


def test_manual_grades_survive_a_regrade_and_a_changed_answer_is_ungraded_again(graded_samples, tmp_path, mnist_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for entry in json.loads((graded_samples / "results.json").read_text())["submissions"]:
        shutil.copy(entry["path"], notebooks)
    out = tmp_path / "reports"
    out.mkdir()
    shutil.copy(graded_samples / STORE_NAME, out / STORE_NAME)
    assert set(grade(notebooks, out, mnist_path).values()) == {"", "24"}  # nothing graded by hand yet

    batch = ReviewBatch.load(out)
    marks = Marks(out, batch.questions)
    for question in batch.questions:
        every = [(submission, batch.answer(submission, question.id)) for submission in batch.submissions]
        marks.apply(question.id, marks.question(question.id).rubric[0].id, every, on=True)
    marks.close()
    totals = grade(notebooks, out, mnist_path)
    assert totals["crashes"] == "13" and totals["correct_other_spellings"] == "18"  # code + 1 per question

    # A resubmission with another answer to q1: that answer is ungraded again, its earlier grade shown.
    notebook = nbformat.read(notebooks / "crashes.ipynb", as_version=4)
    notebook.cells[-1].source = notebook.cells[-1].source.replace("Model 2 is better", "Model 1 is better")
    nbformat.write(notebook, notebooks / "crashes.ipynb")
    totals = grade(notebooks, out, mnist_path)
    assert totals["crashes"] == "" and totals["correct_other_spellings"] == "18"
    document = json.loads((out / "results.json").read_text())
    assert_follows_results_schema(document)  # written grades, a changed answer's included
    written = next(s for s in document["submissions"] if s["id"] == "crashes")
    q1 = written["written"][0]
    assert (q1["status"], q1["earlier_points"]) == ("changed", 1.0)
    assert "the answer changed since it got 1" in (out / "submissions" / "crashes.html").read_text()
