"""Where notebooks are graded: in this process one after another, in N local worker
processes at once, or as tasks on a Ray cluster (``grader.batch.ray_cluster``).
``grade_batch`` sees only the ``Executor`` interface.

Every worker grades with ``grade_safely``, so a result never depends on the
executor or on N: each notebook still runs in its own sandboxed kernel.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

from grader.errors import fault_injected
from grader.judge.pipeline import GradingContext, grade_safely, not_graded_result
from grader.judge.results import Graded
from grader.run.backends import gpu_count
from grader.run.isolation import machine_memory_bytes
from grader.spec.exercise import Spec

# Draws parts of a graded notebook's pages (``grader.reports.pages.draw_parts``); the reports
# are above this layer, so the command that writes them hands it in.
Draw = Callable[[Graded, Spec], Graded]


class Executor(Protocol):
    def grade(self, paths: list[Path], context: GradingContext) -> Iterator[tuple[Path, Graded]]:
        """Grade every path; yield each with its result as it finishes, in any order."""
        ...


def default_jobs() -> int:
    """One kernel per core (measured faster than one kernel on all cores: start-up, data
    feeding and evaluation run on the CPU, in parallel), but no more than one per 4 GiB of
    memory. With GPUs too: the kernels share them, each backend held to its share of memory
    (``grader.run.backends``)."""
    cores = len(os.sched_getaffinity(0))
    memory_gib = machine_memory_bytes() / 2**30
    return max(1, min(cores, int(memory_gib // 4)))


def core_slices(cores: list[int], jobs: int) -> list[list[int]]:
    """Split the cores among ``jobs`` workers, as evenly as they go; with more workers than
    cores, workers share them one each."""
    if jobs >= len(cores):
        return [[cores[index % len(cores)]] for index in range(jobs)]
    return [cores[index * len(cores) // jobs : (index + 1) * len(cores) // jobs] for index in range(jobs)]


class InProcess:
    """One notebook after another in this process (``--jobs 1``), each next kernel started
    while the notebook before it runs."""

    def grade(self, paths: list[Path], context: GradingContext) -> Iterator[tuple[Path, Graded]]:
        for index, path in enumerate(paths):
            yield path, grade_safely(path, context, more_to_come=index < len(paths) - 1)


class LocalProcesses:
    """``jobs`` worker processes on this machine, each pinned to its share of the cores.

    A worker that dies takes the pool's unfinished gradings with it: each is retried once on
    its own, then recorded as not graded (a fault of the grader's, no score), and the batch
    goes on.
    """

    def __init__(
        self,
        jobs: int,
        grade: Callable[[Path, GradingContext, bool], Graded] | None = None,
        draw: Draw | None = None,
    ) -> None:
        """``draw``: what a worker draws of a notebook's pages once it is graded (see
        ``grade_in_worker``)."""
        self.jobs = jobs
        # What a worker runs per notebook: ``grade_safely``; tests swap in their own.
        self.grade_one = grade
        self.draw = draw

    def grade(self, paths: list[Path], context: GradingContext) -> Iterator[tuple[Path, Graded]]:
        broken: list[Path] = []
        yield from self._grade_in_pool(paths, context, self.jobs, broken, self.draw)
        # A dead worker breaks the whole pool, so the notebooks it took down with it are
        # retried one by one, each in a pool of its own: only the culprit can fail again. They
        # are not drawn there: a crash while drawing must not cost a notebook its grade.
        for path in broken:
            again: list[Path] = []
            yield from self._grade_in_pool([path], context, 1, again, None)
            if again:
                reason = "the grading worker process died twice while this notebook was being graded"
                yield path, Graded(not_graded_result(path, reason, context))

    def _grade_in_pool(
        self, paths: list[Path], context: GradingContext, workers: int, broken: list[Path], draw: Draw | None
    ) -> Iterator[tuple[Path, Graded]]:
        """Grade ``paths`` in a fresh pool, the workers drawing with ``draw``; those lost to a
        dead worker go into ``broken``."""
        with self._pool(workers) as pool:
            # Tasks are taken in order: each worker's last one is among the last ``workers``,
            # and starts no spare kernel (``grader.run.warm``) that no notebook would use.
            futures: dict[Future[Graded], Path] = {
                pool.submit(self._grade_function(draw), path, context, index < len(paths) - workers): path
                for index, path in enumerate(paths)
            }
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    path = futures.pop(future)
                    try:
                        yield path, future.result()
                    except BrokenProcessPool:
                        broken.append(path)

    def _grade_function(self, draw: Draw | None) -> Callable[[Path, GradingContext, bool], Graded]:
        return self.grade_one or functools.partial(grade_in_worker, draw=draw)

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        slices = core_slices(sorted(os.sched_getaffinity(0)), workers)
        spawn = multiprocessing.get_context("spawn")
        slot = spawn.Value("i", 0)
        return ProcessPoolExecutor(
            workers, mp_context=spawn, initializer=_start_worker, initargs=(slot, slices, gpu_count())
        )


def grade_in_worker(
    path: Path, context: GradingContext, more_to_come: bool = False, draw: Draw | None = None
) -> Graded:
    """What a worker process (local or on Ray) runs per notebook: ``grade_safely``, then
    ``draw``, which draws the slow parts of its pages here rather than in the one process that
    writes the reports; ``more_to_come``: this worker is likely to grade another after it."""
    if fault_injected("worker"):
        os.kill(os.getpid(), signal.SIGKILL)
    graded = grade_safely(path, context, more_to_come)
    return draw(graded, context.spec) if draw is not None else graded


def _start_worker(slot: Any, slices: list[list[int]], gpus: int) -> None:
    """Pin this worker, and so its kernels, to its cores (the backends size their thread pools
    to the cores they may use, so workers split the machine instead of fighting over it), and
    give it one GPU, the workers taking the GPUs in turn."""
    with slot.get_lock():
        index = slot.value
        slot.value += 1
    os.sched_setaffinity(0, slices[index % len(slices)])
    if gpus and "CUDA_VISIBLE_DEVICES" not in os.environ:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
