"""``grader validate`` on the written questions: each asked by the handout, answered in the
solution, and each rubric item with an id of its own. Pure: no kernel, no data."""

from __future__ import annotations

import shutil

import nbformat
from nbformat.v4 import new_markdown_cell, new_notebook

from grader.assign.validate import questions_findings
from grader.spec.exercise import DEFAULT_SPEC, load_spec


def test_every_shipped_spec_with_questions_holds():
    for name in ("mnist_mlp.toml", "mnist_mlp_open.toml"):
        findings = questions_findings(load_spec(DEFAULT_SPEC.parent / name))
        assert [(f.what, f.passed) for f in findings] == [
            ("rubric ids", True), ("questions in the handout", True), ("answers in the solution", True)
        ], findings  # fmt: skip


def test_a_question_the_handout_does_not_ask_an_unanswered_one_and_an_item_without_id_are_named(tmp_path):
    spec_text = DEFAULT_SPEC.read_text().replace('{ id = "tried-it", title = "Tried it"', '{ title = "Tried it"')
    (tmp_path / DEFAULT_SPEC.name).write_text(spec_text)
    for name in ("mnist_mlp_solution.ipynb", "mnist_mlp.calibration.json"):
        shutil.copy(DEFAULT_SPEC.parent / name, tmp_path / name)
    spec = load_spec(tmp_path / DEFAULT_SPEC.name)
    q1, q2 = (spec.questions[0].prompt, spec.questions[1].prompt)
    nbformat.write(new_notebook(cells=[new_markdown_cell(f"{q1}\n\n{q2}")]), tmp_path / "mnist_mlp_handout.ipynb")
    nbformat.write(new_notebook(cells=[new_markdown_cell(f"{q1}\n\nModel 2.")]), tmp_path / "mnist_mlp_solution.ipynb")
    findings = {finding.what: finding for finding in questions_findings(spec)}
    assert not findings["rubric ids"].passed and "q3: 'Tried it'" in findings["rubric ids"].detail
    assert findings["questions in the handout"].detail == "does not ask ['q3'] in any of their wordings"
    assert findings["answers in the solution"].detail == "has no answer found for ['q2', 'q3']"
