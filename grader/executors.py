"""Where notebooks are graded: in this process one after another, in N local worker
processes at once, or as tasks on a Ray cluster. ``grade_batch`` sees only the
``Executor`` interface.

Every worker grades with ``grade_safely``, so a result never depends on the
executor or on N: each notebook still runs in its own sandboxed kernel.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from grader.results import Graded

if TYPE_CHECKING:
    from grader.pipeline import GradingContext


class Executor(Protocol):
    def grade(self, paths: list[Path], context: GradingContext) -> Iterator[tuple[Path, Graded]]:
        """Grade every path; yield each with its result as it finishes, in any order."""
        ...


def gpu_count() -> int:
    """NVIDIA GPUs on this machine, counted by their device nodes (no CUDA needed)."""
    return sum(1 for node in Path("/dev").glob("nvidia[0-9]*"))


def default_jobs() -> int:
    """Four kernels per GPU, which they share thanks to memory growth; on a CPU one per core
    (measured faster than one kernel on all cores: start-up and evaluation run in parallel),
    but no more than one per 4 GiB of memory."""
    cores = len(os.sched_getaffinity(0))
    gpus = gpu_count()
    if gpus:
        return max(1, min(cores, 4 * gpus))
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, min(cores, int(memory_gib // 4)))


def core_slices(cores: list[int], jobs: int) -> list[list[int]]:
    """Split the cores among ``jobs`` workers, as evenly as they go; with more workers than
    cores, workers share them one each."""
    if jobs >= len(cores):
        return [[cores[index % len(cores)]] for index in range(jobs)]
    return [cores[index * len(cores) // jobs : (index + 1) * len(cores) // jobs] for index in range(jobs)]


class InProcess:
    """One notebook after another in this process (``--jobs 1``)."""

    def grade(self, paths: list[Path], context: GradingContext) -> Iterator[tuple[Path, Graded]]:
        from grader.pipeline import grade_safely

        for path in paths:
            yield path, grade_safely(path, context)


class LocalProcesses:
    """``jobs`` worker processes on this machine, each pinned to its share of the cores.

    A worker that dies takes the pool's unfinished gradings with it: each is retried once on
    its own, then recorded as an error, and the batch goes on.
    """

    def __init__(self, jobs: int, grade: Callable[[Path, GradingContext], Graded] | None = None) -> None:
        self.jobs = jobs
        # What a worker runs per notebook: ``grade_safely``; tests swap in their own.
        self.grade_one = grade

    def grade(self, paths: list[Path], context: GradingContext) -> Iterator[tuple[Path, Graded]]:
        from grader.pipeline import unrunnable_result

        broken: list[Path] = []
        yield from self._grade_in_pool(paths, context, self.jobs, broken)
        # A dead worker breaks the whole pool, so the notebooks it took down with it are
        # retried one by one, each in a pool of its own: only the culprit can fail again.
        for path in broken:
            again: list[Path] = []
            yield from self._grade_in_pool([path], context, 1, again)
            if again:
                reason = "the grading worker process died twice while this notebook was being graded"
                yield path, Graded(unrunnable_result(path, "error", reason, context))

    def _grade_in_pool(
        self, paths: list[Path], context: GradingContext, workers: int, broken: list[Path]
    ) -> Iterator[tuple[Path, Graded]]:
        """Grade ``paths`` in a fresh pool; those lost to a dead worker go into ``broken``."""
        with self._pool(workers) as pool:
            futures: dict[Future[Graded], Path] = {
                pool.submit(self._grade_function(), path, context): path for path in paths
            }
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    path = futures.pop(future)
                    try:
                        yield path, future.result()
                    except BrokenProcessPool:
                        broken.append(path)

    def _grade_function(self) -> Callable[[Path, GradingContext], Graded]:
        from grader.pipeline import grade_safely

        return self.grade_one or grade_safely

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        slices = core_slices(sorted(os.sched_getaffinity(0)), workers)
        spawn = multiprocessing.get_context("spawn")
        slot = spawn.Value("i", 0)
        return ProcessPoolExecutor(
            workers, mp_context=spawn, initializer=_start_worker, initargs=(slot, slices, gpu_count() > 0)
        )


def _start_worker(slot: Any, slices: list[list[int]], gpus: bool) -> None:
    """Pin this worker, and so its kernels, to its cores: TensorFlow sizes its thread pools
    to the cores it may use, so workers split the machine instead of fighting over it."""
    with slot.get_lock():
        index = slot.value
        slot.value += 1
    os.sched_setaffinity(0, slices[index % len(slices)])
    if gpus:
        # Several kernels share a card only if none takes all of its memory up front.
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


class RayCluster:
    """Each notebook a Ray task that asks for ``cpus`` and a fraction ``gpus`` of a GPU.

    Joins the cluster at ``address``, or starts a local Ray instance (and stops it at the
    end). Workers get the data set, the spec's folder and each notebook through Ray's
    object store, not a shared filesystem, and grade with ``grade_safely`` in a sandbox of
    their own. A task whose worker dies is retried once by Ray, then recorded as an error.
    """

    def __init__(
        self,
        address: str | None = None,
        cpus: float = 1.0,
        gpus: float = 0.0,
        local_cpus: int | None = None,
        grade: Callable[[Path, GradingContext], Graded] | None = None,
    ) -> None:
        self.address = address
        self.cpus = cpus
        self.gpus = gpus
        self.local_cpus = local_cpus  # CPUs of a local instance: this machine's by default
        self.grade_one = grade

    def grade(self, paths: list[Path], context: GradingContext) -> Iterator[tuple[Path, Graded]]:
        import ray

        from grader.pipeline import unrunnable_result

        started_here = not ray.is_initialized()
        if started_here:
            self._connect(ray)
        try:
            task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=1)(grade_on_worker)
            shipped = ray.put(ShippedContext.of(context))
            # Only plain files travel: a symbolic link, or a path that is not a file, is graded here,
            # where reading it refuses it with the reason, as for every executor.
            shippable = [path for path in paths if path.is_file() and not path.is_symlink()]
            pending = {task.remote(shipped, path.name, path.read_bytes(), self.grade_one): path for path in shippable}
            yield from InProcess().grade([path for path in paths if path not in shippable], context)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                path = pending.pop(ready[0])
                try:
                    graded: Graded = ray.get(ready[0])
                except ray.exceptions.WorkerCrashedError:
                    reason = "the Ray worker grading this notebook died twice"
                    graded = Graded(unrunnable_result(path, "error", reason, context))
                yield path, replace(graded, result=replace(graded.result, path=str(path)))
        finally:
            if started_here:
                ray.shutdown()

    def _connect(self, ray: Any) -> None:
        if self.address:
            ray.init(address=self.address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=self.local_cpus or len(os.sched_getaffinity(0)),
                _node_ip_address="127.0.0.1",  # a local instance listens on loopback only
                include_dashboard=False,
                log_to_driver=False,
                # The data set and notebooks are small; the default (30% of memory) is not needed.
                object_store_memory=512 * 2**20,
            )


@dataclass(frozen=True)
class ShippedContext:
    """A grading context as it travels to a Ray worker: the data set's bytes and the spec's
    folder (its files, not its path), with everything else as it is."""

    context: GradingContext
    data: bytes
    spec_folder: dict[str, bytes]

    @classmethod
    def of(cls, context: GradingContext) -> ShippedContext:
        folder = context.spec.path.parent
        files = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
        return cls(context, context.data_path.read_bytes(), files)

    def unpack(self, folder: Path) -> GradingContext:
        """The context with its data and spec written under ``folder``."""
        from grader.sandbox import probe_isolation
        from grader.spec import load_spec

        data_path = folder / "data.npz"
        data_path.write_bytes(self.data)
        (folder / "reference").mkdir()
        for name, content in self.spec_folder.items():
            (folder / "reference" / name).write_bytes(content)
        spec = load_spec(folder / "reference" / self.context.spec.path.name)
        # The sandbox is this worker's own: what isolation it gives is probed here, not on the driver.
        return replace(self.context, data_path=data_path, spec=spec, isolation=probe_isolation())


def grade_on_worker(
    shipped: ShippedContext,
    file_name: str,
    notebook: bytes,
    grade: Callable[[Path, GradingContext], Graded] | None,
) -> Graded:
    """A Ray task: grade one notebook, sent as bytes, with the shipped data and spec."""
    from grader.pipeline import grade_safely, unrunnable_result

    with tempfile.TemporaryDirectory(prefix="grader-ray-") as scratch:
        folder = Path(scratch)
        context = shipped.unpack(folder)
        (folder / "submissions").mkdir()
        path = folder / "submissions" / file_name
        path.write_bytes(notebook)
        if context.options.strict_sandbox and context.isolation.missing():
            reason = f"--strict-sandbox: the Ray worker lacks {'; '.join(context.isolation.missing())}"
            return Graded(unrunnable_result(path, "error", reason, context))
        return (grade or grade_safely)(path, context)


def make_executor(
    jobs: int, executor: str = "local", address: str | None = None, cpus: float = 1.0, gpus: float = 0.0
) -> Executor:
    if executor == "ray":
        return RayCluster(address, cpus, gpus, local_cpus=jobs)
    return InProcess() if jobs == 1 else LocalProcesses(jobs)
