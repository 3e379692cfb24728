"""The handout made from a solution notebook: solution regions (nbgrader's and otter's
markers) replaced by a placeholder indented as they were, outputs cleared, the rest kept;
markers that do not pair up are an error naming the cell."""

from __future__ import annotations

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.assign.handout import make_handout
from grader.cli import cli
from grader.errors import SpecError

SOLUTION_CODE = """model_1 = Sequential()
### BEGIN SOLUTION
model_1.add(Dense(64, activation="relu", input_shape=(784,)))
model_1.add(Dense(10, activation="softmax"))
### END SOLUTION
model_1.summary()"""


def solution() -> nbformat.NotebookNode:
    trained = new_code_cell(SOLUTION_CODE, execution_count=3, outputs=[new_output("stream", text="Total params")])
    nested = new_code_cell("def prepare(x):\n    # BEGIN SOLUTION\n    return x / 255\n    # END SOLUTION")
    question = new_markdown_cell("## Think about the following questions\n1. How do model_1 and model_2 compare?")
    answer = new_markdown_cell("### BEGIN SOLUTION\nmodel_2: more accurate.\n### END SOLUTION")
    return new_notebook(cells=[trained, nested, question, answer])


def test_solution_regions_become_placeholders_and_the_rest_is_kept():
    original = solution()
    handout = make_handout(original)
    trained, nested, question, answer = handout.cells
    assert trained.source == "model_1 = Sequential()\n# YOUR CODE HERE\nmodel_1.summary()"
    assert (trained.outputs, trained.execution_count) == ([], None)
    assert nested.source == "def prepare(x):\n    # YOUR CODE HERE"
    assert question.source == original.cells[2].source  # the written questions stay
    assert answer.source == "YOUR ANSWER HERE"
    assert original.cells[0].source == SOLUTION_CODE  # the solution itself is untouched
    nbformat.validate(handout)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("### BEGIN SOLUTION\nx = 1", "cell 0: a BEGIN SOLUTION that no END SOLUTION closes"),
        ("x = 1\n### END SOLUTION", "cell 0, line 2: an END SOLUTION without a BEGIN SOLUTION"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "cell 0, line 2: a BEGIN SOLUTION inside"),
    ],
)
def test_markers_that_do_not_pair_up_are_an_error_naming_the_cell(source, message):
    with pytest.raises(SpecError, match=message):
        make_handout(new_notebook(cells=[new_code_cell(source)]))


def test_the_command_writes_the_handout_beside_the_solution(tmp_path):
    path = tmp_path / "cnn_solution.ipynb"
    nbformat.write(solution(), path)
    outcome = CliRunner().invoke(cli, ["handout", str(path)])
    assert outcome.exit_code == 0, outcome.output
    written = nbformat.read(tmp_path / "cnn_solution_handout.ipynb", as_version=4)
    assert "# YOUR CODE HERE" in written.cells[0].source
    broken = tmp_path / "broken.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("### BEGIN SOLUTION")]), broken)
    outcome = CliRunner().invoke(cli, ["handout", str(broken)])
    assert outcome.exit_code == 3 and "no END SOLUTION closes" in outcome.output
