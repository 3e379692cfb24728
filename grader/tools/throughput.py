"""The batch bench: K copies of one notebook graded as ``grader grade`` grades them (sandboxed
kernels, the evaluator, N workers), timed from outside. It reports grades per hour, the
seconds per epoch each model trained at, the overhead per notebook (a worker's time per
notebook that was not training), where a grading's seconds went (waiting for its kernel, the
notebook's cells, the grader's own work) and, on an NVIDIA GPU, the memory each notebook took."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nbformat

from grader.batch.grade import grade_batch, make_executor
from grader.batch.store import ResultStore
from grader.judge.pipeline import GradingContext
from grader.judge.results import Graded, SubmissionResult

# How often GPU memory is read while the batch runs.
GPU_SAMPLE_SECONDS = 0.5


@dataclass(frozen=True)
class BatchBench:
    notebooks: int
    jobs: int
    mode: str
    backend: str
    wall_seconds: float
    # Per model: the median of every epoch after the first (of the only one in quick mode), over all notebooks
    epoch_seconds: dict[str, float]
    # Per notebook, on average: seconds of training (every epoch) and a worker's seconds in all
    training_seconds: float
    worker_seconds: float
    graded: int
    # MiB, per notebook at its peak and all together, where nvidia-smi can tell
    gpu_mib_per_notebook: float | None
    gpu_mib_peak: float | None
    # Per notebook, on average: seconds waiting for its kernel (request to first cell), running
    # its cells, and the grader's own (the rest of its grading); kernels forked from a zygote
    kernel_start_seconds: float = 0.0
    # The median: a kernel's start once its worker's zygote is up (the mean counts the zygote's start)
    kernel_start_median_seconds: float = 0.0
    cells_seconds: float = 0.0
    grader_seconds: float = 0.0
    forked: int = 0

    @property
    def grades_per_hour(self) -> float:
        return self.graded * 3600 / self.wall_seconds

    @property
    def overhead_seconds(self) -> float:
        """A worker's seconds per notebook spent on anything but training."""
        return self.worker_seconds - self.training_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "grades_per_hour": round(self.grades_per_hour, 1),
            "overhead_seconds": round(self.overhead_seconds, 2),
        }


class GpuMemory:
    """Peak GPU memory per process and in all, read from ``nvidia-smi`` in the background."""

    def __init__(self) -> None:
        self.per_process: dict[str, float] = {}
        self.peak_total: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.available = shutil.which("nvidia-smi") is not None

    def __enter__(self) -> GpuMemory:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.available:
            self._thread.join()

    def _query(self, *arguments: str) -> list[list[str]]:
        try:
            output = subprocess.run(
                ["nvidia-smi", *arguments, "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [[field.strip() for field in line.split(",")] for line in output.splitlines() if line.strip()]

    def _sample(self) -> None:
        while not self._stop.wait(GPU_SAMPLE_SECONDS):
            for pid, used in (row for row in self._query("--query-compute-apps=pid,used_memory") if len(row) == 2):
                if used.isdigit():
                    self.per_process[pid] = max(self.per_process.get(pid, 0.0), float(used))
            totals = [float(row[0]) for row in self._query("--query-gpu=memory.used") if row and row[0].isdigit()]
            if totals:
                self.peak_total = max(self.peak_total or 0.0, sum(totals))

    @property
    def per_notebook(self) -> float | None:
        """The largest peak of one process: a kernel's, as the evaluators run on the CPU."""
        return max(self.per_process.values()) if self.per_process else None


def bench_batch(
    notebook: Path,
    copies: int,
    jobs: int,
    context: GradingContext,
    on_result: Callable[[Graded, bool], None] = lambda graded, reused: None,
) -> BatchBench:
    """Grade ``copies`` copies of ``notebook`` with ``jobs`` workers, in a fresh store, and time it."""
    with tempfile.TemporaryDirectory(prefix="grader-batch-bench-") as folder:
        scratch = Path(folder)
        (scratch / "notebooks").mkdir()
        paths = []
        for index in range(copies):
            # Each copy differs by a cell, so that no store could hand back another's result.
            copy = nbformat.read(notebook, as_version=4)  # type: ignore[no-untyped-call]
            copy.cells.insert(0, nbformat.v4.new_markdown_cell(f"Copy {index} of the batch bench"))  # type: ignore[no-untyped-call]
            paths.append(scratch / "notebooks" / f"copy_{index:03d}.ipynb")
            nbformat.write(copy, paths[-1])  # type: ignore[no-untyped-call]
        (scratch / "store").mkdir()
        store = ResultStore(scratch / "store")
        try:
            with GpuMemory() as memory:
                started = time.monotonic()
                run = grade_batch(paths, context, store, force=True, on_result=on_result,
                                  executor=make_executor(jobs))  # fmt: skip
                wall = time.monotonic() - started
        finally:
            store.close()
    results = run.submissions
    epochs: dict[str, list[float]] = {}
    training = []
    for result in results:
        training.append(sum(sum(model.epoch_times) for model in result.models.values()))
        for name, model in result.models.items():
            # The first epoch builds the graph: left out, unless it is all there is (quick mode)
            epochs.setdefault(name, []).extend(model.epoch_times[1:] or model.epoch_times)
    return BatchBench(
        notebooks=copies,
        jobs=jobs,
        mode=context.options.mode,
        backend=context.backend.key,
        wall_seconds=round(wall, 2),
        epoch_seconds={name: round(statistics.median(times), 4) for name, times in sorted(epochs.items()) if times},
        training_seconds=round(statistics.mean(training), 2) if training else 0.0,
        worker_seconds=round(wall * min(jobs, copies) / copies, 2),
        graded=sum(result.status == "graded" for result in results),
        gpu_mib_per_notebook=memory.per_notebook,
        gpu_mib_peak=memory.peak_total,
        **_where_the_seconds_went(results),
    )


def _where_the_seconds_went(results: Sequence[SubmissionResult]) -> dict[str, Any]:
    """The mean seconds per notebook of its kernel's start, its cells and the grader's own work."""
    timed = [result.timings for result in results if result.timings]
    if not timed:
        return {}

    def mean(values: list[float]) -> float:
        return round(statistics.mean(values), 2)

    return {
        "kernel_start_seconds": mean([timing["kernel_start"] for timing in timed]),
        "kernel_start_median_seconds": round(statistics.median(timing["kernel_start"] for timing in timed), 2),
        "cells_seconds": mean([timing["cells"] for timing in timed]),
        "grader_seconds": mean([timing["grading"] - timing["kernel_start"] - timing["cells"] for timing in timed]),
        "forked": sum(result.kernel_start == "forked" for result in results),
    }
