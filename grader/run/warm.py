"""Kernels started before their notebook is known.

Starting a kernel and importing Keras, its backend and the instrumentation takes seconds, and
none of it depends on the notebook. A ``WarmKernel`` does it in a fresh sandbox, in a thread of
its own, then waits for the one notebook it will run: a kernel is never reused. It is forked
from a zygote that imported all that once, where this process has one (``grader.run.zygote``),
else started cold. Each process keeps at most one such spare (``KERNELS``): a grading takes
the spare, and starts the next one while its notebook runs when more notebooks are to come and
the process has room for it.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from jupyter_core.utils import ensure_event_loop
from nbformat import NotebookNode

from grader.protocol.manifest import FINALE, HookSettings, preamble
from grader.run.backends import gpu_count
from grader.run.execute import Execution, NotebookKernel
from grader.run.isolation import Isolation, Limits
from grader.run.sandbox import Sandbox
from grader.run.zygote import ZYGOTES


@dataclass(frozen=True)
class KernelRecipe:
    """Everything a kernel is started with besides its notebook."""

    isolation: Isolation
    limits: Limits
    data_path: Path
    # What ``grader.check`` reads inside: the spec and its calibration
    reference_files: tuple[Path, ...]
    cpu_seconds: int
    # Variables the kernel needs besides its own (the Keras backend's)
    environment: tuple[tuple[str, str], ...]
    # The instrumentation's settings; its facts folder and data path are each sandbox's own.
    settings: HookSettings
    # Seconds the kernel may take to start and run the preamble
    start_timeout: float
    # The data file's name in the notebook's folder, for a spec whose data is a file
    data_name: str | None = None


class WarmKernel:
    """A kernel started for ``recipe`` in a sandbox of its own, waiting in a thread of its own
    for its notebook. ``run`` runs the notebook; ``close`` removes the sandbox, once what the
    kernel exported has been read."""

    def __init__(self, recipe: KernelRecipe, batch: bool = False) -> None:
        """``batch``: more kernels like it are to come in this process (a zygote is worth
        starting for them, ``grader.run.zygote``)."""
        self.recipe = recipe
        self._requested = time.monotonic()  # before the zygote it is forked from, if one is started for it
        self.zygote = ZYGOTES.socket_for(recipe.isolation, dict(recipe.environment), batch)
        # When a grading took it (``KernelPool.take``); else when its notebook was given
        self.asked: float | None = None
        self._ready = 0.0
        # Not a TemporaryDirectory: its finalizer would run at exit before ``KERNELS.close``
        # has unmounted the sandbox's tmpfs, and fail on it.
        self._scratch = Path(tempfile.mkdtemp(prefix="grader-"))
        sandbox = Sandbox(
            recipe.isolation, recipe.limits, self._scratch, recipe.data_path,
            list(recipe.reference_files), recipe.cpu_seconds, dict(recipe.environment), recipe.data_name,
        )  # fmt: skip
        try:
            self.sandbox = sandbox.__enter__()
        except BaseException:
            shutil.rmtree(self._scratch, ignore_errors=True)
            raise
        # Bound into the sandbox as the kernel starts; the notebook is written into this same file later.
        self.sandbox.notebook.write_bytes(b"")
        self._orders: queue.SimpleQueue[tuple[NotebookNode, float] | None] = queue.SimpleQueue()
        self._execution: Execution | None = None
        self._crash: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="grader-kernel", daemon=True)
        self._thread.start()

    def run(self, submission: Path, notebook: NotebookNode, timeout: float) -> Execution:
        """Run ``notebook`` (read from ``submission``) within ``timeout`` seconds."""
        asked = self.asked or time.monotonic()
        # Written in place: the sandbox sees this file, not a new one at its path.
        shutil.copyfile(submission, self.sandbox.notebook)
        self._orders.put((notebook, timeout))
        self._thread.join()
        if self._crash is not None:
            raise self._crash
        assert self._execution is not None
        # From the grading's request (or the spare's start, if later) to the kernel's first cell
        waited = max(0.0, self._ready - max(asked, self._requested))
        return replace(self._execution, start_seconds=round(waited, 3), forked=self.zygote is not None)

    def close(self) -> None:
        """Shut down the kernel if it never got a notebook, and remove the sandbox."""
        if self._thread.is_alive():
            self._orders.put(None)
            self._thread.join()
        self.sandbox.__exit__(None, None, None)
        if not os.path.ismount(self.sandbox.writable):  # else left, with its owner.json, for a sweep
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _serve(self) -> None:
        sandbox = self.sandbox
        settings = replace(self.recipe.settings, facts_dir=sandbox.inside_facts, data_path=sandbox.inside_data)
        kernel = NotebookKernel(sandbox, preamble(settings), self.recipe.start_timeout, self.zygote)
        try:
            kernel.start()
            self._ready = time.monotonic()
            if kernel.failure is not None and self.zygote is not None:
                ZYGOTES.refuse(self.zygote, kernel.failure)  # this grading's retry starts cold
            order = self._orders.get()
            if order is None:
                kernel.close()
            else:
                self._execution = kernel.run(order[0], FINALE, order[1])
        except BaseException as error:  # a bug of the grader's: raised where the notebook was given
            self._crash = error
            kernel.close()
        finally:
            _close_event_loop()


def _close_event_loop() -> None:
    """Close the event loop nbclient ran the kernel on, which is this thread's own and ends
    with it. After a time limit nbclient leaves its output poller pending: it is cancelled
    first, or asyncio prints "Task was destroyed but it is pending!" on the user's terminal."""
    loop = ensure_event_loop()
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=CANCEL_SECONDS))
    loop.close()


# How long cancelled tasks may take to end before their loop is closed anyway
CANCEL_SECONDS = 5


class KernelPool:
    """This process' spare kernel, started before its notebook is known."""

    def __init__(self) -> None:
        self._spare: WarmKernel | None = None

    def take(self, recipe: KernelRecipe, more_to_come: bool = False) -> WarmKernel:
        """A kernel for ``recipe``: the spare if it was started for it, else one started now.
        When ``more_to_come`` and this process has room (``room_for_a_spare``), the next spare
        starts at once, while this one's notebook runs."""
        asked = time.monotonic()
        kernel, self._spare = self._spare, None
        if kernel is not None and (kernel.recipe != recipe or (kernel.zygote and ZYGOTES.refused(kernel.zygote))):
            kernel.close()
            kernel = None
        if kernel is None:
            kernel = WarmKernel(recipe, more_to_come)
        kernel.asked = asked
        if more_to_come and room_for_a_spare():
            try:
                self._spare = WarmKernel(recipe, batch=True)
            except Exception:
                # A spare only saves time: the next grading starts its own kernel, and meets
                # the same error there, where it is retried and reported.
                self._spare = None
        return kernel

    def start_spare(self, recipe: KernelRecipe) -> None:
        """Start a kernel for ``recipe`` now, for the grading that comes next in this process."""
        if self._spare is None:
            self._spare = WarmKernel(recipe)

    def close(self) -> None:
        kernel, self._spare = self._spare, None
        if kernel is not None:
            kernel.close()


def room_for_a_spare() -> bool:
    """Whether a spare kernel can start beside a running notebook without slowing it: this
    process may use more than one core, or a GPU trains while the cores wait. A process pinned
    to one core (one worker per core) would only share that core between the two."""
    return len(os.sched_getaffinity(0)) > 1 or gpu_count() > 0


KERNELS = KernelPool()
atexit.register(KERNELS.close)
