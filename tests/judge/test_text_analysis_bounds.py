"""The grader's reading of a notebook's text is linear and inside the notebook's time budget.

Each regex that reads student text gets the input that made it quadratic (100,000 characters:
hours before the fix, milliseconds after); pytest-timeout ends a run that hangs. A reader past
its deadline is given up, with a warning, and the code's grade stands.
"""

from __future__ import annotations

import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.judge import answers, claims
from grader.judge.answers import find_answers
from grader.judge.claims import find_claims
from grader.judge.deadline import Deadline, OutOfTime
from grader.spec.exercise import DEFAULT_SPEC, load_spec

SPEC = load_spec(DEFAULT_SPEC)
HANDOUT = nbformat.read(SPEC.handout, as_version=4)
LONG = 100_000


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (answers.NUMBERED, " " * LONG + "!"),  # blanks before and after an optional bullet
        (answers.NUMBERED, "\t" * LONG + ")"),
        (answers.NUMBERED, "- " + " " * LONG + "x"),
        (answers.NUMBERED, "<p>" * (LONG // 3) + "x"),  # tags before a number
        (answers.NUMBERED, "<a" * (LONG // 2)),
        (answers.OTTER_NAME, "\n" * LONG + "x"),  # ^\s* under MULTILINE, at every line's start
        (claims.COUNT, "1" * LONG + ".5"),  # digits given back one by one to a lookahead
        (claims.COUNT, "1" + ",111" * (LONG // 4) + "1"),
    ],
    ids=[
        "numbered-spaces",
        "numbered-tabs",
        "numbered-bullet",
        "numbered-tags",
        "numbered-open-tags",
        "otter-newlines",
        "count-digits",
        "count-groups",
    ],
)
def test_each_regex_on_student_text_takes_linear_time(pattern, text):
    list(pattern.finditer(text))
    pattern.sub("", text)


def notebook(*markdown: str) -> nbformat.NotebookNode:
    return new_notebook(cells=[new_code_cell("model_1.fit(x, y)"), *(new_markdown_cell(text) for text in markdown)])


HOSTILE_MARKDOWN = {
    "a line of spaces": " " * LONG,
    "a run of digits": "model_1 has " + "1" * LONG + ".5 parameters",
    "otter's marker over newlines": "BEGIN QUESTION" + "\n" * LONG + "name: q1",
    "numbered tabs": "\t" * LONG + "1) and",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("markdown", HOSTILE_MARKDOWN.values(), ids=HOSTILE_MARKDOWN.keys())
def test_the_readers_of_answers_and_claims_end_on_hostile_markdown(markdown):
    hostile = notebook(markdown)
    assert len(find_answers(hostile, SPEC.questions, HANDOUT)) == len(SPEC.questions)
    find_claims(hostile, SPEC, improvement_cell=0)


def test_a_reader_past_its_deadline_stops():
    passed = Deadline(time.monotonic() - 1)
    text = notebook("1. Model 2 is better.\n2. It overfits.\n3. More epochs helped.")
    with pytest.raises(OutOfTime):
        find_answers(text, SPEC.questions, HANDOUT, passed)
    with pytest.raises(OutOfTime):
        find_claims(text, SPEC, 0, passed)
    assert find_answers(text, SPEC.questions, HANDOUT, Deadline.after(60))  # the same, in time


def test_answers_past_the_budget_are_a_warning_and_the_grade_stands(spec, tmp_path):
    from grader.ingest.notebook import load_submission
    from grader.judge.pipeline import OUT_OF_TIME, _with_answers
    from grader.judge.results import SubmissionResult

    path = tmp_path / "late.ipynb"
    nbformat.write(notebook("1. Model 2 is better."), path)
    result = SubmissionResult("late", str(path), "graded", 5.0, 5.0, ())
    late = _with_answers(result, load_submission(path), spec, Deadline(time.monotonic() - 1))
    assert (late.score, late.answers) == (5.0, ())
    assert late.warnings == (OUT_OF_TIME.format(what="its written answers"),)
