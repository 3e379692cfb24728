"""Run a notebook in a fresh kernel behind the grader's instrumentation.

The kernel starts, and runs the instrumentation's preamble, before its notebook is known
(``grader.run.warm`` starts the next one while a worker grades). Every code cell runs even
when an earlier one fails; a whole-notebook time limit interrupts the kernel, which is then
given a short grace period to export the models it holds before it is shut down.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, Literal

import nbformat
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode

from grader.errors import fault_injected
from grader.run.isolation import machine_memory_bytes, machine_oom_kills
from grader.run.progress import report
from grader.run.sandbox import Sandbox
from grader.run.watchdog import Watchdog

Outcome = Literal["completed", "timeout", "dead_kernel", "kernel_failed"]

# Seconds the last cell (exporting models never fitted) may take after a timeout.
FINISH_GRACE_SECONDS = 60.0
SOURCE_PREVIEW_CHARS = 160
# Outputs kept per notebook; a flood beyond this is dropped as it arrives.
MAX_OUTPUT_BYTES = 2 * 2**20
# Characters kept of an exception's name and message.
MAX_ERROR_CHARS = 2000
# Exit statuses of a process killed by SIGKILL: as Python sees it, and as bubblewrap reports it
KILLED = (-9, 128 + 9)
# The kernel every notebook runs in, whatever its metadata names: the grader's own Python.
GRADER_KERNEL = "python3"


@dataclass(frozen=True)
class CellError:
    """An exception raised by a student's cell; ``cell_index`` counts every cell from 0."""

    cell_index: int
    ename: str
    evalue: str
    source: str

    @classmethod
    def of(cls, cell_index: int, content: dict[str, Any], source: str) -> CellError:
        """From an execute reply, its name and message cut to a bound (saying so)."""
        return cls(cell_index, _cut(content.get("ename")), _cut(content.get("evalue")), source_preview(source))

    def describe(self) -> str:
        return f"cell {self.cell_index} raised {self.ename}: {self.evalue} (in: {self.source})"


def _cut(value: object) -> str:
    text = str(value)
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return f"{text[:MAX_ERROR_CHARS]}… ({len(text) - MAX_ERROR_CHARS:,} more characters cut)"


@dataclass(frozen=True)
class Execution:
    """How a run went. ``kernel_failed`` is the grader's fault: the kernel did not start, or
    died or failed while the instrumentation was set up, before any of the notebook ran."""

    outcome: Outcome
    message: str | None
    cell_errors: tuple[CellError, ...]
    output_dropped: bool = False
    # Position of a cell in the instrumented run -> index of the student's cell.
    student_cells: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    # The student's notebook, every cell, with the outputs of this run.
    notebook: NotebookNode | None = None
    # What the grader's own cells (the preamble and the finale) printed, for diagnosis.
    instrumentation_output: str = ""
    # The kernel the notebook's metadata named, if any; it ran in the grader's own regardless.
    kernel_asked: str | None = None
    # Widget (comm) messages the kernel sent: not graded, dropped as they arrive.
    comm_messages: int = 0
    # The notebook filled the space it may write where the grader reads.
    write_limit_reached: bool = False
    # Seconds the grading waited for its kernel (request to first cell); whether it was forked
    start_seconds: float = 0.0
    forked: bool = False


class PromptKernelClient(AsyncKernelClient):
    """jupyter_client's client, ready as soon as the kernel has answered ``kernel_info`` on the
    shell channel and said something on IOPub. jupyter_client's own then listens until IOPub
    has been quiet for 0.2 s, which every kernel's start would pay; nbclient reads IOPub by the
    request each message answers, so what is still on its way is left for it to skip."""

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await ensure_async(self.shell_channel.get_msg(timeout=1))
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply" and await self._iopub_heard():
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("the kernel died before it answered kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the kernel did not answer kernel_info within {timeout:g} s")

    # jupyter_client binds the name to its own function, not to the method
    wait_for_ready = _async_wait_for_ready

    async def _iopub_heard(self) -> bool:
        """Whether IOPub delivers (a kernel's status for the request): else the request is sent again."""
        try:
            await ensure_async(self.iopub_channel.get_msg(timeout=IOPUB_SECONDS))
        except Empty:
            return False
        return True


# How long IOPub is listened to for the kernel's first message before asking it again
IOPUB_SECONDS = 0.2


class SandboxedKernelManager(AsyncKernelManager):
    """Starts ipykernel with the grader's own interpreter inside ``sandbox``, whatever
    kernelspecs exist or the notebook names, talking over Unix sockets in the sandbox's
    shared folder; forked from the zygote listening on ``zygote``, if one is given
    (``grader.run.zygote``)."""

    sandbox: Sandbox
    zygote: Path | None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client_factory = PromptKernelClient
        self.transport = "ipc"
        self.ip = str(self.sandbox.ipc_dir / "kernel")
        self.connection_file = str(self.sandbox.ipc_dir / "kernel.json")

    @property
    def kernel_spec(self) -> KernelSpec:
        # Never looked up by name: a notebook's "dl_env" exists only on the student's machine.
        return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher"], display_name="grader", language="python")

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        # jupyter_client's place for launching differently: here, the kernel is named to a
        # sweep the moment it exists, should this process be killed while it starts.
        await super()._async_launch_kernel(kernel_cmd, **kw)
        pid = getattr(self.provisioner, "pid", None)
        if isinstance(pid, int):
            self.sandbox.record_kernel(pid)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        if fault_injected("kernel-start"):
            return [sys.executable, "-c", "raise SystemExit('GRADER_INJECT_FAULT: the kernel exits at start')"]
        connection_file = os.path.realpath(self.connection_file)
        if self.zygote is not None:
            return self.sandbox.forked_kernel_command(connection_file, self.zygote)
        return self.sandbox.kernel_command(connection_file)


class CappedNotebookClient(NotebookClient):
    """Keeps at most ``MAX_OUTPUT_BYTES`` of outputs, so that a notebook printing
    without end cannot exhaust the grader's memory, and drops widget messages: nothing
    graded depends on them, and a malformed one must not stop the grading."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.output_bytes = 0
        self.output_dropped = False
        self.comm_messages = 0

    def handle_comm_msg(self, outs: list[NotebookNode], msg: dict[str, Any], cell_index: int) -> None:
        self.comm_messages += 1

    def output(
        self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> NotebookNode | None:
        self.output_bytes += sum(len(str(value)) for value in msg.get("content", {}).values())
        if self.output_bytes > MAX_OUTPUT_BYTES:
            self.output_dropped = True
            return None
        return super().output(outs, msg, display_id, cell_index)


def new_code_cell(source: str) -> NotebookNode:
    return nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call,no-any-return]


def source_preview(source: str) -> str:
    flat = " ".join(source.split())
    return flat if len(flat) <= SOURCE_PREVIEW_CHARS else flat[: SOURCE_PREVIEW_CHARS - 1] + "…"


class NotebookKernel:
    """One notebook's kernel in ``sandbox``, in two halves: ``start`` starts it and runs the
    grader's ``preamble``, before the notebook is known; ``run`` then runs the notebook's code
    cells and the ``finale`` once, and shuts the kernel down. ``close`` shuts down a kernel that
    never got its notebook. nbclient drives a kernel from one thread's event loop, which holds
    its sockets: call all three from one thread."""

    def __init__(self, sandbox: Sandbox, preamble: str, start_timeout: float, zygote: Path | None = None) -> None:
        self.sandbox = sandbox
        self.zygote = zygote
        self.start_timeout = start_timeout
        # Why the kernel is not ready for a notebook, if it is not: always the grader's fault.
        self.failure: str | None = None
        self._preamble = new_code_cell(preamble)
        self._oom_kills: int | None = None
        self._deadline = 0.0
        self._finishing = False
        self._errors: list[CellError] = []
        self._student_index: dict[int, int] = {}
        self._watchdog: Watchdog | None = None
        self._open = ExitStack()
        self.client = CappedNotebookClient(
            nbformat.v4.new_notebook(cells=[self._preamble]),  # type: ignore[no-untyped-call]
            kernel_name=GRADER_KERNEL,
            store_widget_state=False,
            allow_errors=True,
            interrupt_on_timeout=False,
            kernel_manager_class=type(
                "KernelManager", (SandboxedKernelManager,), {"sandbox": sandbox, "zygote": zygote}
            ),
            resources={"metadata": {"path": str(sandbox.workdir)}},
            on_cell_executed=self._on_cell_executed,
            timeout_func=self._seconds_left,
            shutdown_kernel="immediate",
        )

    def start(self) -> None:
        """Start the kernel in its cgroups and run the preamble; ``failure`` says why if that failed."""
        self._deadline = time.monotonic() + self.start_timeout
        try:
            # The kernel's own stdout/stderr (C++ logs, writes to fd 2) stay out of the grader's console.
            kernel_log = self._open.enter_context(self.sandbox.kernel_log.open("wb"))
            self._open.enter_context(self.sandbox.confined())
            self._open.enter_context(
                self.client.setup_kernel(env=self.sandbox.process_environment(), stdout=kernel_log, stderr=kernel_log)
            )
            self._watchdog = self._open.enter_context(Watchdog(self.sandbox, self._kernel_pids))
            self.client.execute_cell(self._preamble, 0)
        except (RuntimeError, TimeoutError) as error:
            self.failure = f"the notebook's kernel could not be started: {error}"
        except (CellTimeoutError, DeadKernelError) as error:
            self.failure = f"the grader's instrumentation failed in the kernel ({type(error).__name__}: {error})"

    def run(self, notebook: NotebookNode, finale: str, timeout: float) -> Execution:
        """Run every code cell of ``notebook``, then ``finale``, within ``timeout`` seconds; then
        shut the kernel down."""
        started = time.monotonic()
        self._deadline = started + timeout
        self._oom_kills = machine_oom_kills()
        cells, self._student_index = _instrumented_cells(notebook, self._preamble, finale)
        metadata = {key: value for key, value in notebook.get("metadata", {}).items() if key != "kernelspec"}
        run = self.client.nb = nbformat.v4.new_notebook(cells=cells, metadata=metadata)  # type: ignore[no-untyped-call]
        outcome: Outcome = "completed"
        message: str | None = None
        if self.failure is None and not self._alive():
            self.failure = "the kernel died before the notebook was given to it"
        try:
            with self._open:
                if self.failure is not None:
                    raise _NotReady
                try:
                    student_cells = len(run.cells) - 2
                    for index, cell in enumerate(run.cells[1:-1], start=1):
                        cell_number = self._student_index[index]
                        report(
                            "cell", f"running cell {cell_number} (code cell {index} of {student_cells})",
                            cell=cell_number, code_cell=index, code_cells=student_cells,
                        )  # fmt: skip
                        self.client.execute_cell(cell, index)
                except CellTimeoutError:
                    outcome = "timeout"
                    message = f"the notebook did not finish within its time limit of {timeout:g} s"
                    assert self.client.km is not None
                    run_sync(self.client.km.interrupt_kernel)()  # type: ignore[arg-type]
                except DeadKernelError:
                    outcome = "dead_kernel"
                    where = _running_cell(self.client, run, self._student_index)
                    message = self._death(where)  # waits for the kernel's process to end
                    lost = self.sandbox.forked_kernel_lost() if self.zygote is not None else None
                    if lost is not None:  # not the notebook's doing: the grader's fault, retried
                        outcome, message = "kernel_failed", f"the notebook's kernel was lost{where}: {lost}"
                if outcome == "completed" or outcome == "timeout":
                    self._finishing = True
                    try:
                        self.client.execute_cell(run.cells[-1], len(run.cells) - 1)
                    except (CellTimeoutError, DeadKernelError):
                        pass  # models exported when their fit returned are still there
        except _NotReady:
            outcome, message = "kernel_failed", self.failure
        except (RuntimeError, TimeoutError) as error:
            outcome, message = "kernel_failed", f"the notebook's kernel failed: {error}"
        return Execution(
            outcome,
            message,
            tuple(self._errors),
            self.client.output_dropped,
            self._student_index,
            round(time.monotonic() - started, 3),
            _with_outputs(notebook, run, self._student_index),
            instrumentation_output=_outputs_text([run.cells[0], run.cells[-1]]),
            kernel_asked=notebook.get("metadata", {}).get("kernelspec", {}).get("name"),
            comm_messages=self.client.comm_messages,
            write_limit_reached=self.sandbox.written_bytes() >= WRITE_LIMIT_FULL * self.sandbox.limits.write_bytes,
        )

    def close(self) -> None:
        """Shut down a kernel that never ran its notebook."""
        try:
            self._open.close()
        except (RuntimeError, TimeoutError):
            pass  # the cgroups, where there are any, have killed what was left

    def _kernel_pids(self) -> list[int]:
        """The kernel's process (a forked kernel's relay) and a forked kernel's own."""
        process = getattr(getattr(self.client.km, "provisioner", None), "process", None)
        pids = [getattr(process, "pid", None), self.sandbox.forked_kernel_pid() if self.zygote else None]
        return [pid for pid in pids if isinstance(pid, int)]

    def _exit_status(self) -> int | None:
        process = getattr(getattr(self.client.km, "provisioner", None), "process", None)
        try:
            return process.wait(timeout=5) if process is not None else None
        except Exception:  # still running, or not a process of ours
            return None

    def _death(self, where: str) -> str:
        """Why the kernel died while the notebook ran, judged by how its own process ended: the
        notebook's doing, whatever else the machine did meanwhile."""
        limit = self.sandbox.limits.memory_bytes / 2**30
        if self.sandbox.out_of_memory():
            return f"the notebook ran out of memory{where}: it used more than its limit of {limit:g} GiB"
        if self._watchdog is not None and self._watchdog.overwritten.is_set():
            return f"the notebook wrote more than its limit of {self.sandbox.limits.write_bytes / 2**20:,.0f} MiB"
        status = self._exit_status()
        before, after = self._oom_kills, machine_oom_kills()
        if status in KILLED and before is not None and after is not None and after > before:
            return (
                f"the notebook ran out of memory{where}: the machine's out-of-memory killer stopped its kernel, "
                f"the largest process, before it reached its limit of {limit:g} GiB (this machine gives the grader "
                f"{machine_memory_bytes() / 2**30:.1f} GiB; an instructor can give it more, or grade fewer notebooks "
                "at once with --jobs)"
            )
        if status in KILLED:
            return f"the kernel was killed{where} (SIGKILL): by the notebook's own code, or for the memory it held"
        return f"the kernel died{where}: the process exited or crashed (os._exit, a segfault or running out of memory)"

    def _alive(self) -> bool:
        manager = self.client.km
        return manager is not None and bool(run_sync(manager.is_alive)())  # type: ignore[arg-type]

    def _on_cell_executed(self, cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any]) -> None:
        content = (execute_reply or {}).get("content", {})
        if content.get("status") != "error":
            return
        index = self._student_index.get(cell_index)
        if index is not None:
            self._errors.append(CellError.of(index, content, cell.source))
        elif cell_index == 0:
            # Without the instrumentation nothing the notebook does can be graded.
            reason = f"{_cut(content.get('ename'))}: {_cut(content.get('evalue'))}"
            self.failure = f"the grader's instrumentation failed in the kernel ({reason})"

    def _seconds_left(self, cell: NotebookNode) -> float:
        if self._finishing:
            return FINISH_GRACE_SECONDS
        return max(1.0, self._deadline - time.monotonic())


class _NotReady(Exception):
    """The kernel failed before its notebook could run."""


# A tmpfs this full was filled: the notebook met its limit (a write then fails with ENOSPC).
WRITE_LIMIT_FULL = 0.95


def _outputs_text(cells: list[NotebookNode]) -> str:
    """What ``cells`` printed, tracebacks included, as plain text."""
    lines: list[str] = []
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines.append(str(output.get("text", "")))
            elif output.get("output_type") == "error":
                lines.append("\n".join(str(line) for line in output.get("traceback", [])))
            else:
                lines.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(lines)


def _with_outputs(notebook: NotebookNode, run: NotebookNode, student_index: dict[int, int]) -> NotebookNode:
    """A copy of the student's notebook whose code cells hold what they output in ``run``."""
    executed = nbformat.from_dict(notebook)  # type: ignore[no-untyped-call]
    for position, index in student_index.items():
        executed.cells[index].outputs = run.cells[position].get("outputs", [])
        count = run.cells[position].get("execution_count")
        # The grader's preamble ran first; number the student's cells as if it had not.
        executed.cells[index].execution_count = count - 1 if isinstance(count, int) and count > 1 else count
    return executed  # type: ignore[no-any-return]


def _instrumented_cells(
    notebook: NotebookNode, preamble: NotebookNode, finale: str
) -> tuple[list[NotebookNode], dict[int, int]]:
    """The cells to run, the preamble (already run) first, and the map from their positions to
    the student's cell indices."""
    cells = [preamble]
    student_index: dict[int, int] = {}
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") == "code":
            student_index[len(cells)] = index
            cells.append(new_code_cell(cell.source))
    cells.append(new_code_cell(finale))
    return cells, student_index


def _running_cell(client: NotebookClient, run: NotebookNode, student_index: dict[int, int]) -> str:
    """`` while running cell N (its source)``, the student's cell that was running, or ""."""
    # The cell that was running is the last one that received an execution request.
    running = client.code_cells_executed - 1
    cell = student_index.get(running)
    return f" while running cell {cell} ({source_preview(run.cells[running].source)})" if cell is not None else ""
