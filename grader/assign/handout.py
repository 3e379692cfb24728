"""The handout of an exercise, made from its solution notebook as nbgrader and otter make
theirs: every region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (otter's
``# BEGIN SOLUTION`` too) becomes ``# YOUR CODE HERE`` in a code cell or "YOUR ANSWER HERE"
in a markdown cell, indented as its markers were; outputs and execution counts are cleared;
everything else, the written questions included, is kept as written."""

from __future__ import annotations

import copy
import re

from nbformat import NotebookNode

from grader.errors import SpecError

BEGIN = re.compile(r"^(?P<indent>[ \t]*)#{1,3}\s*BEGIN SOLUTION\b.*$")
END = re.compile(r"^[ \t]*#{1,3}\s*END SOLUTION\b.*$")
CODE_PLACEHOLDER = "# YOUR CODE HERE"
ANSWER_PLACEHOLDER = "YOUR ANSWER HERE"


def make_handout(solution: NotebookNode) -> NotebookNode:
    """The handout of ``solution`` (which is left as it is); ``SpecError`` when it has no
    solution region, or names the cell whose markers do not pair up."""
    handout = copy.deepcopy(solution)
    for index, cell in enumerate(handout.cells):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if cell.cell_type in ("code", "markdown"):
            placeholder = CODE_PLACEHOLDER if cell.cell_type == "code" else ANSWER_PLACEHOLDER
            cell.source = _without_solutions(str(cell.source), placeholder, index)
    if not any(BEGIN.match(line) for cell in solution.cells for line in str(cell.source).splitlines()):
        raise SpecError(
            "the solution has no solution regions, so its handout would be the solution itself: put the code "
            "students write between a line `### BEGIN SOLUTION` and a line `### END SOLUTION` (and written "
            "answers so in their markdown cells)"
        )
    return handout


def _without_solutions(source: str, placeholder: str, cell: int) -> str:
    lines: list[str] = []
    opened: re.Match[str] | None = None
    for number, line in enumerate(source.splitlines(), start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if opened:
                raise SpecError(f"cell {cell}, line {number}: a BEGIN SOLUTION inside another; close the first one")
            opened = begin
            lines.append(begin["indent"] + placeholder)
        elif end:
            if not opened:
                raise SpecError(f"cell {cell}, line {number}: an END SOLUTION without a BEGIN SOLUTION before it")
            opened = None
        elif not opened:
            lines.append(line)
    if opened:
        raise SpecError(f"cell {cell}: a BEGIN SOLUTION that no END SOLUTION closes")
    return "\n".join(lines)
