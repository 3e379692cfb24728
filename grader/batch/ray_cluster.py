"""Each notebook a Ray task: the executor behind ``grader grade --executor ray``."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grader.batch.executors import Draw, InProcess, grade_in_worker
from grader.judge.pipeline import GradingContext, not_graded_result
from grader.judge.results import Graded
from grader.protocol.text import name_text
from grader.run.isolation import Isolation
from grader.run.probe import probe_isolation
from grader.run.sandbox import sweep_stale_sandboxes
from grader.run.zygote import ZYGOTES
from grader.spec.exercise import load_spec


class RayCluster:
    """Each notebook a Ray task that asks for ``cpus`` and a fraction ``gpus`` of a GPU.

    Joins the cluster at ``address``, or starts a local Ray instance (and stops it at the
    end). Workers get the data set, the spec's folder and each notebook through Ray's
    object store, not a shared filesystem, and grade with ``grade_safely`` in a sandbox of
    their own. A task whose worker dies is retried once by Ray, then recorded as not graded.
    """

    def __init__(
        self,
        address: str | None = None,
        cpus: float = 1.0,
        gpus: float = 0.0,
        local_cpus: int | None = None,
        grade: Callable[[Path, GradingContext], Graded] | None = None,
        draw: Draw | None = None,
    ) -> None:
        self.address = address
        self.cpus = cpus
        self.gpus = gpus
        self.local_cpus = local_cpus  # CPUs of a local instance: this machine's by default
        self.grade_one = grade
        self.draw = draw  # what a worker draws of the pages (``grade_in_worker``)

    def grade(self, paths: list[Path], context: GradingContext) -> Iterator[tuple[Path, Graded]]:
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            self._connect(ray)
        try:
            task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=1)(grade_on_worker)
            shipped = ray.put(ShippedContext.of(context))
            # Only plain files travel: a symbolic link, or a path that is not a file, is graded here,
            # where reading it refuses it with the reason, as for every executor.
            shippable = [path for path in paths if path.is_file() and not path.is_symlink()]
            grade_one = self.grade_one or functools.partial(grade_in_worker, draw=self.draw)
            pending = {task.remote(shipped, path.name, path.read_bytes(), grade_one): path for path in shippable}
            yield from InProcess().grade([path for path in paths if path not in shippable], context)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                path = pending.pop(ready[0])
                try:
                    graded: Graded = ray.get(ready[0])
                except ray.exceptions.WorkerCrashedError:
                    reason = "the Ray worker grading this notebook died twice"
                    graded = Graded(not_graded_result(path, reason, context))
                yield path, replace(graded, result=replace(graded.result, path=name_text(str(path))))
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

    def unpack(self, under: Path | None = None) -> GradingContext:
        """The context with its data and spec written into a folder of the node's temporary
        folder (or ``under``) named by their content: once per node, whatever the tasks."""
        parent = under or Path(tempfile.gettempdir())
        folder = parent / f"grader-ray-{self.context.data_digest[:16]}-{self.context.spec.digest}"
        if not folder.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=f"{folder.name}-", dir=parent))
            (staging / "data.npz").write_bytes(self.data)
            (staging / "reference").mkdir()
            for name, content in self.spec_folder.items():
                (staging / "reference" / name).write_bytes(content)
            try:
                staging.rename(folder)  # whole or not at all, whichever task of the node gets there first
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
        spec = load_spec(folder / "reference" / self.context.spec.path.name, self.context.backend.key)
        # The sandbox is this worker's own: what isolation it gives is probed here, once, not on the driver.
        return replace(self.context, data_path=folder / "data.npz", spec=spec, isolation=_worker_isolation())


@functools.cache
def _worker_isolation() -> Isolation:
    """Probed once per worker process, on its first task, after the sandboxes that a worker
    killed on this node left (Ray retries its task in a new one) are swept."""
    sweep_stale_sandboxes()
    return probe_isolation()


def grade_on_worker(
    shipped: ShippedContext,
    file_name: str,
    notebook: bytes,
    grade: Callable[[Path, GradingContext], Graded],
) -> Graded:
    """A Ray task: grade one notebook, sent as bytes, with the shipped data and spec. A Ray
    worker process runs task after task: its kernels are forked from a zygote of its own."""
    ZYGOTES.expect_several()
    context = shipped.unpack()
    with tempfile.TemporaryDirectory(prefix="grader-ray-") as scratch:
        folder = Path(scratch)
        (folder / "submissions").mkdir()
        path = folder / "submissions" / file_name
        path.write_bytes(notebook)
        if context.options.strict_sandbox and context.isolation.missing():
            reason = f"--strict-sandbox: the Ray worker lacks {'; '.join(context.isolation.missing())}"
            return Graded(not_graded_result(path, reason, context))
        return grade(path, context)
