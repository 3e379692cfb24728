"""Limits enforced by watching, where nothing in the operating system enforces them: what a
sandbox's processes write where the grader reads (without a tmpfs under those folders) and the
memory they hold (without a memory cgroup). A thread looks twice a second and kills every
process of the sandbox past a limit, saying which limit it was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

import psutil

from grader.run.sandbox import Sandbox

WATCH_SECONDS = 0.5


class Watchdog:
    """Watches the processes of ``sandbox`` (the processes ``roots`` gives and everything they
    started, orphans included: they are adopted below a root, by bubblewrap's init or else by
    the sandbox's reaper; a kernel forked from a zygote is a root of its own beside its relay)
    for as long as the block runs, if a limit needs watching here.
    ``overwritten`` is set when it stopped them for writing too much; ``sandbox.memory_exceeded``
    when for holding too much memory."""

    def __init__(self, sandbox: Sandbox, roots: Callable[[], list[int]]) -> None:
        self.sandbox = sandbox
        self.roots = roots
        self.overwritten = threading.Event()
        self._finished = threading.Event()
        self._watch_writes = not sandbox.isolation.write_cap
        self._watch_memory = not sandbox.isolation.memory_limited
        self._thread = threading.Thread(target=self._watch, name="grader-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        if self._watch_writes or self._watch_memory:
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._finished.set()

    def _watch(self) -> None:
        limits = self.sandbox.limits
        while not self._finished.wait(WATCH_SECONDS):
            roots = self.roots()
            if self._watch_writes and self.sandbox.written_bytes() > limits.write_bytes:
                self.overwritten.set()
            elif self._watch_memory and held_memory(roots, limits.memory_bytes) > limits.memory_bytes:
                self.sandbox.memory_exceeded.set()
            else:
                continue
            kill_tree(roots)
            return


def held_memory(pids: list[int], limit: int) -> int:
    """The memory the processes ``pids`` and their descendants hold: their resident memory summed
    while that is within ``limit``; past it, their proportional set sizes summed (a page that
    processes share counted once in all, not once per process), which take longer to read."""
    processes = _trees(pids)
    resident = sum(_quietly(lambda process: process.memory_info().rss, process) for process in processes)
    if resident <= limit:
        return resident
    return sum(_quietly(lambda process: process.memory_full_info().pss, process) for process in processes)


def kill_tree(pids: list[int]) -> None:
    """SIGKILL the processes ``pids`` and every process they started."""
    for process in reversed(_trees(pids)):  # children first: none is left without its killer
        try:
            process.kill()
        except psutil.Error:
            continue


def _trees(pids: list[int]) -> list[psutil.Process]:
    processes = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            processes += [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
    return processes


def _quietly(read: Callable[[psutil.Process], int], process: psutil.Process) -> int:
    try:
        return read(process)
    except psutil.Error:  # it ended meanwhile, or cannot be read: it holds nothing now
        return 0
