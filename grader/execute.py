"""Run a notebook in a fresh kernel behind the grader's instrumentation.

Every code cell runs even when an earlier one fails; a whole-notebook time
limit interrupts the kernel, which is then given a short grace period to
export the models it holds before it is shut down.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode

Outcome = Literal["completed", "timeout", "dead_kernel", "kernel_failed"]

# Seconds the last cell (exporting models never fitted) may take after a timeout.
FINISH_GRACE_SECONDS = 60.0
SOURCE_PREVIEW_CHARS = 160
KERNEL_ENV = {
    # TensorFlow's C++ start-up chatter is noise in a student's report.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONUNBUFFERED": "1",
}


@dataclass(frozen=True)
class CellError:
    """An exception raised by a student's cell; ``cell_index`` counts every cell from 0."""

    cell_index: int
    ename: str
    evalue: str
    source: str

    def describe(self) -> str:
        return f"cell {self.cell_index} raised {self.ename}: {self.evalue} (in: {self.source})"


@dataclass(frozen=True)
class Execution:
    outcome: Outcome
    message: str | None
    cell_errors: tuple[CellError, ...]
    # Position of a cell in the instrumented run -> index of the student's cell.
    student_cells: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


class PinnedKernelManager(AsyncKernelManager):
    """Starts ipykernel with the grader's own interpreter, whatever kernelspecs exist."""

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [sys.executable, "-m", "ipykernel_launcher", "-f", os.path.realpath(self.connection_file)]


def new_code_cell(source: str) -> NotebookNode:
    return nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call,no-any-return]


def source_preview(source: str) -> str:
    flat = " ".join(source.split())
    return flat if len(flat) <= SOURCE_PREVIEW_CHARS else flat[: SOURCE_PREVIEW_CHARS - 1] + "…"


def execute_notebook(
    notebook: NotebookNode,
    workdir: Path,
    preamble: str,
    finale: str,
    timeout: float,
) -> Execution:
    """Run ``preamble``, every code cell of ``notebook``, then ``finale``, in ``workdir``."""
    started = time.monotonic()
    deadline = started + timeout
    cells, student_index = _instrumented_cells(notebook, preamble, finale)
    run = nbformat.v4.new_notebook(cells=cells, metadata=notebook.get("metadata", {}))  # type: ignore[no-untyped-call]
    errors: list[CellError] = []

    def on_cell_executed(cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]) -> None:
        content = (execute_reply or {}).get("content", {})
        index = student_index.get(cell_index)
        if index is None:
            return
        if content.get("status") == "error":
            errors.append(
                CellError(index, str(content.get("ename")), str(content.get("evalue")), source_preview(cell.source))
            )

    finishing = False

    def seconds_left(cell: NotebookNode) -> float:
        if finishing:
            return FINISH_GRACE_SECONDS
        return max(1.0, deadline - time.monotonic())

    client = NotebookClient(
        run,
        allow_errors=True,
        interrupt_on_timeout=False,
        kernel_manager_class=PinnedKernelManager,
        resources={"metadata": {"path": str(workdir)}},
        on_cell_executed=on_cell_executed,
        timeout_func=seconds_left,
        shutdown_kernel="immediate",
    )
    outcome: Outcome = "completed"
    message: str | None = None
    # The kernel's own stdout/stderr (C++ logs, writes to fd 2) stay out of the grader's console.
    kernel_log = (workdir.parent / "kernel.log").open("wb")
    try:
        with kernel_log, client.setup_kernel(env={**os.environ, **KERNEL_ENV}, stdout=kernel_log, stderr=kernel_log):
            try:
                for index, cell in enumerate(run.cells[:-1]):
                    client.execute_cell(cell, index)
            except CellTimeoutError:
                outcome = "timeout"
                message = f"the notebook did not finish within its time limit of {timeout:g} s"
                assert client.km is not None
                run_sync(client.km.interrupt_kernel)()  # type: ignore[arg-type]
            except DeadKernelError:
                outcome = "dead_kernel"
                message = _dead_kernel_message(client, run, student_index)
            if outcome != "dead_kernel":
                finishing = True
                try:
                    client.execute_cell(run.cells[-1], len(run.cells) - 1)
                except (CellTimeoutError, DeadKernelError):
                    pass  # models exported when their fit returned are still there
    except (RuntimeError, TimeoutError) as error:
        outcome, message = "kernel_failed", f"the notebook's kernel could not be started: {error}"
    return Execution(outcome, message, tuple(errors), student_index, round(time.monotonic() - started, 3))


def _instrumented_cells(
    notebook: NotebookNode, preamble: str, finale: str
) -> tuple[list[NotebookNode], dict[int, int]]:
    """The cells to run, and the map from their positions to the student's cell indices."""
    cells = [new_code_cell(preamble)]
    student_index: dict[int, int] = {}
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") == "code":
            student_index[len(cells)] = index
            cells.append(new_code_cell(cell.source))
    cells.append(new_code_cell(finale))
    return cells, student_index


def _dead_kernel_message(client: NotebookClient, run: NotebookNode, student_index: dict[int, int]) -> str:
    # The cell that was running is the last one that received an execution request.
    running = client.code_cells_executed - 1
    cell = student_index.get(running)
    where = f" while running cell {cell} ({source_preview(run.cells[running].source)})" if cell is not None else ""
    return f"the kernel died{where}: the process exited or crashed (os._exit, a segfault or running out of memory)"
