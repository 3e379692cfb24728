"""Kernels started before their notebook is known (``grader.run.warm``): which kernel a
grading gets, and that a kernel started early runs its notebook as a fresh one would."""

import json
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from grader.judge.pipeline import GradingOptions, kernel_recipe, prepare_context
from grader.protocol.manifest import HookSettings
from grader.run import warm
from grader.run.isolation import Isolation, Limits
from grader.run.probe import probe_isolation
from grader.run.sandbox import OWNER_FILE, process_start


def recipe(quick: bool = True) -> warm.KernelRecipe:
    settings = HookSettings("", "", "mnist", (28, 28), ("model_1",), quick, 2048, 1000, 32)
    isolation = Isolation(None, False, False, None, None)
    return warm.KernelRecipe(isolation, Limits(), Path("mnist.npz"), (), 60, (), settings, 60.0)


class FakeKernel:
    """Stands in for a started kernel: records what it was started for and whether it was closed."""

    def __init__(self, for_recipe: warm.KernelRecipe, batch: bool = False) -> None:
        self.recipe = for_recipe
        self.zygote = None
        self.closed = False
        STARTED.append(self)

    def close(self) -> None:
        self.closed = True


STARTED: list[FakeKernel] = []


@pytest.fixture
def pool(monkeypatch):
    STARTED.clear()
    monkeypatch.setattr(warm, "WarmKernel", FakeKernel)
    monkeypatch.setattr(warm, "room_for_a_spare", lambda: True)
    return warm.KernelPool()


def test_a_grading_takes_the_spare_started_for_it_and_starts_the_next(pool):
    first = pool.take(recipe(), more_to_come=True)
    assert len(STARTED) == 2  # its own, and the spare for the next notebook
    second = pool.take(recipe(), more_to_come=False)
    assert second is STARTED[1] and second is not first
    assert len(STARTED) == 2  # the last notebook starts no spare
    assert pool.take(recipe()) is STARTED[2]


def test_a_spare_started_for_other_settings_is_closed_not_used(pool):
    pool.start_spare(recipe(quick=True))
    spare = STARTED[0]
    taken = pool.take(recipe(quick=False))
    assert spare.closed and taken is not spare and taken.recipe == recipe(quick=False)


def test_no_spare_without_room_for_it(pool, monkeypatch):
    monkeypatch.setattr(warm, "room_for_a_spare", lambda: False)
    pool.take(recipe(), more_to_come=True)
    assert len(STARTED) == 1


def test_a_spare_that_cannot_start_costs_the_grading_nothing(pool, monkeypatch):
    def start_one_only(for_recipe, batch=False):
        if STARTED:
            raise OSError("cannot mount the sandbox's tmpfs")
        return FakeKernel(for_recipe, batch)

    monkeypatch.setattr(warm, "WarmKernel", start_one_only)
    taken = pool.take(recipe(), more_to_come=True)
    assert taken is STARTED[0] and not taken.closed
    monkeypatch.setattr(warm, "WarmKernel", FakeKernel)
    assert pool.take(recipe()) is STARTED[1]  # no spare was left: the next grading starts its own


def test_closing_the_pool_closes_its_spare(pool):
    pool.start_spare(recipe())
    pool.close()
    assert STARTED[0].closed


def test_a_spare_needs_a_core_of_its_own_or_a_gpu(monkeypatch):
    monkeypatch.setattr(warm, "gpu_count", lambda: 0)
    monkeypatch.setattr(warm.os, "sched_getaffinity", lambda pid: {0})
    assert not warm.room_for_a_spare()
    monkeypatch.setattr(warm.os, "sched_getaffinity", lambda pid: {0, 1})
    assert warm.room_for_a_spare()
    monkeypatch.setattr(warm.os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(warm, "gpu_count", lambda: 1)
    assert warm.room_for_a_spare()


def test_the_kernel_started_with_the_context_is_the_one_its_grading_takes(pool, monkeypatch, mnist_path):
    """``grader check`` starts its kernel while the data set is read: the grading must find it."""
    from grader.judge import pipeline

    monkeypatch.setattr(pipeline, "KERNELS", pool)
    context = prepare_context(GradingOptions(quick=True), data_path=mnist_path, start_kernel=True)
    assert len(STARTED) == 1
    taken = pool.take(recipe_of(context))
    assert taken is STARTED[0] and not taken.closed


@pytest.fixture(scope="module")
def context(mnist_path):
    return prepare_context(GradingOptions(quick=True, timeout=120), data_path=mnist_path)


def recipe_of(context) -> warm.KernelRecipe:
    return kernel_recipe(
        context.spec, context.options, context.backend, context.isolation, context.data_path,
        context.backend_environment,
    )  # fmt: skip


def started_kernel(context) -> warm.WarmKernel:
    return warm.WarmKernel(recipe_of(context))


def write_notebook(folder: Path, *sources: str) -> tuple[Path, nbformat.NotebookNode]:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    path = folder / "student.ipynb"
    nbformat.write(notebook, path)
    return path, notebook


@pytest.mark.kernel
@pytest.mark.skipif(probe_isolation().bubblewrap is None, reason="needs bubblewrap (apt-get install bubblewrap)")
def test_a_kernel_started_early_sees_its_notebook_and_the_instrumentation(context, tmp_path):
    """The notebook is written into the sandbox after its kernel started: the kernel reads it
    where a fresh one would, and Keras is already instrumented."""
    path, notebook = write_notebook(
        tmp_path, "import os, sys\nprint(os.path.getsize('submission.ipynb'), 'grader.kernel' in sys.modules)"
    )
    kernel = started_kernel(context)
    try:
        time.sleep(1)  # the kernel is starting, or has started, before its notebook exists
        execution = kernel.run(path, notebook, timeout=60)
    finally:
        kernel.close()
    assert execution.outcome == "completed" and not execution.cell_errors
    printed = execution.notebook.cells[0].outputs[0]["text"].split()
    assert printed == [str(path.stat().st_size), "True"]
    assert not kernel.sandbox.writable.exists()  # closed: its sandbox is gone


@pytest.mark.kernel
def test_a_kernel_that_died_before_its_notebook_came_is_the_graders_fault(context, tmp_path):
    path, notebook = write_notebook(tmp_path, "print('never runs')")
    kernel = started_kernel(context)
    try:
        manifest = kernel.sandbox.facts_dir / "manifest.json"
        deadline = time.monotonic() + 120
        while not manifest.exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # the preamble writes it last
        assert manifest.exists(), "the kernel did not start"
        # Named to a sweep as soon as it was launched (its launcher's pid, which became the sandbox).
        named = json.loads((kernel.sandbox.scratch / OWNER_FILE).read_text())["kernel"]
        assert process_start(named["pid"]) == named["started"] is not None
        subprocess.run(["pkill", "-9", "-f", str(kernel.sandbox.ipc_dir)], check=True)
        # Dead before the notebook comes: SIGKILL is delivered, and the processes end, a moment later.
        deadline = time.monotonic() + 30
        while subprocess.run(["pgrep", "-f", str(kernel.sandbox.ipc_dir)], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "the kernel outlived SIGKILL"
            time.sleep(0.1)
        execution = kernel.run(path, notebook, timeout=60)
    finally:
        kernel.close()
    assert execution.outcome == "kernel_failed", execution.message
    assert not execution.cell_errors and not execution.notebook.cells[0].get("outputs")


EXITS_WITH_A_SPARE = """
import sys
from pathlib import Path
from grader.judge.pipeline import GradingOptions, prepare_context
from grader.run.warm import KERNELS
prepare_context(GradingOptions(quick=True), data_path=Path(sys.argv[1]), start_kernel=True)
print(KERNELS._spare.sandbox.scratch)
"""


@pytest.mark.kernel
def test_a_process_that_exits_with_a_spare_removes_its_sandbox_quietly(mnist_path):
    """Interrupted batches end so: the spare's sandbox (its tmpfs unmounted first) is removed at exit."""
    import sys

    completed = subprocess.run(
        [sys.executable, "-c", EXITS_WITH_A_SPARE, str(mnist_path)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0 and completed.stderr == "", completed.stderr
    assert not Path(completed.stdout.strip()).exists()
