"""Fuzzing the host's side of grading with Hypothesis: a notebook's JSON and its file name,
of arbitrary text (lone surrogates, NUL, controls, combining and bidi characters, long runs,
many cells), go through every step the grader takes on the host after the kernel: the roster,
the reading of the notebook, its answers and claims, the result store (SQLite), the pages
(HTML), ``results.json``, the gradebooks (CSV) and the review sheet's round trip. None may
raise; each output must be valid UTF-8. The kernel's part is stood in for by a result holding
the notebook's own text where a kernel's messages would put it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import closing
from pathlib import Path

import nbformat
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import grader.judge.pipeline
from grader.batch.grade import grade_batch
from grader.batch.store import ResultStore
from grader.ingest.notebook import load_submission
from grader.ingest.roster import read_roster
from grader.judge.claims import find_claims
from grader.judge.pipeline import _with_answers
from grader.judge.results import Graded, SubmissionResult
from grader.reports.outputs import write_page, write_summaries
from grader.review.batch import ReviewBatch
from grader.review.marks import Marks
from grader.review.sheet import export_sheet, import_sheet
from grader.spec.exercise import DEFAULT_SPEC, load_spec
from tests.conftest import context

SPEC = load_spec(DEFAULT_SPEC)
QUESTION_SENTENCES = [question.wordings[0] for question in SPEC.questions]
HOSTILE = [
    "\ud800", "\udfff", "\udcff", "\x00", "\u202e", "\u2066", "\u0301", "\r\n", "\r", "\t", "\x1b[31m", "\u2028",
    "1.", "**1)**", "Q2:", "(3)", "'=", "=HYPERLINK(1)", "<script>alert(1)</script>", "&amp;", "]]>", "{{ x }}",
    "# BEGIN QUESTION\nname: q1", "model_1 has 55,050 parameters", "98.3%", "improved", "😀", "\ufeff",
]  # fmt: skip
fragment = st.one_of(
    st.text(max_size=40),
    st.sampled_from(HOSTILE + QUESTION_SENTENCES),
    st.builds(
        lambda unit, count: unit * count,
        st.sampled_from([" ", "\n", "\t", "1", "#", "*", ">", ".", ","]),
        st.integers(1_000, 30_000),
    ),
)
text = st.lists(fragment, max_size=6).map("".join)
cell = st.tuples(st.sampled_from(["markdown", "code", "raw"]), text)
file_name = (
    st.binary(min_size=1, max_size=60)
    .filter(lambda name: b"/" not in name and b"\x00" not in name)
    .filter(lambda name: not name.startswith(b"."))
)


def notebook_json(cells: list[tuple[str, str]]) -> str:
    made = {
        "markdown": nbformat.v4.new_markdown_cell,
        "code": nbformat.v4.new_code_cell,
        "raw": nbformat.v4.new_raw_cell,
    }
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("model_1.fit(x_train, y_train)")])
    notebook.cells.extend(made[kind](source) for kind, source in cells)
    return json.dumps(notebook)  # a lone surrogate as its escape, as any JSON writer may put it


def graded_as_a_kernel_would_report(path: Path, grading_context, more_to_come: bool = False) -> Graded:
    """The result of a notebook whose kernel sent back its own text (errors, outputs)."""
    submission = load_submission(path)
    sources = [source.source for source in submission.notebook.cells]
    claims = find_claims(submission.notebook, SPEC, improvement_cell=0)
    result = SubmissionResult(
        submission.id, str(path), "graded", 3.0, 15.0, (),
        warnings=(*submission.notes, *(f"cell {i}: {s[:2000]}" for i, s in enumerate(sources)), f"{len(claims)}"),
    )  # fmt: skip
    executed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    executed.cells[0].outputs = [nbformat.v4.new_output("stream", text="\udcff" + "".join(sources)[:5000])]
    return Graded(_with_answers(result, submission, SPEC), nbformat.writes(executed))


@pytest.mark.timeout(600)
@settings(
    max_examples=12,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking texts this long takes minutes
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(notebooks=st.lists(st.tuples(file_name, st.lists(cell, max_size=6)), min_size=1, max_size=3))
def test_hostile_text_and_names_go_through_every_host_step_twice(notebooks):
    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        folder, out = root / "class", root / "out"
        folder.mkdir()
        out.mkdir()
        for raw_name, cells in notebooks:
            with open(os.fsencode(folder) + b"/" + raw_name + b".ipynb", "w", encoding="utf-8") as file:
                file.write(notebook_json(cells))
        grading = context(SPEC, quick=True)
        for _ in range(2):  # the second time, every result comes from the store
            roster = read_roster([folder], root / "unpacked", SPEC.model_names)
            pages: list[str | None] = []

            def draw(graded: Graded, reused: bool, pages: list[str | None] = pages) -> None:
                pages.append(write_page(graded.result, graded.notebook, run_of(graded), SPEC, out, reused))

            with closing(ResultStore(out)) as store:
                run = grade_batch(roster.submissions, grading, store, on_result=draw)
            assert [result.status for result in run.submissions] == ["graded"] * len(run.submissions)
            assert pages == [None] * len(run.submissions)  # every page drawn
            assert write_summaries(run, SPEC, out) is None
        for written in out.rglob("*"):
            if written.is_file() and written.suffix in (".html", ".csv", ".json"):
                written.read_bytes().decode("utf-8")
        batch = ReviewBatch.load(out)
        marks = Marks(out, batch.questions)
        try:
            assert import_sheet(export_sheet(batch, marks), batch, marks) == 0  # unchanged: nothing to change
        finally:
            marks.close()
    finally:
        shutil.rmtree(root)


def run_of(graded: Graded):
    from grader.batch.grade import make_run

    return make_run(context(SPEC, quick=True), [graded.result])


@pytest.fixture(autouse=True)
def kernel_stood_in_for(monkeypatch):
    monkeypatch.setattr(grader.judge.pipeline, "grade_notebook", graded_as_a_kernel_would_report)
