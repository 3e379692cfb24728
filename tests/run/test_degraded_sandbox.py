"""The sandbox without bubblewrap (and without cgroups): the grader's environment stays out of
it, and every process a notebook starts, a ``setsid`` orphan included, is counted by the
watchdog while it runs and ends with its sandbox, whether the sandbox has a uid of its own
(root) or not."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import psutil
import pytest

from grader.run.execute import KILLED
from grader.run.isolation import CGROUPS_SWITCH, Isolation, Limits
from grader.run.probe import probe_isolation
from grader.run.sandbox import Sandbox
from grader.run.watchdog import held_memory

SECRET_NAME = "GITHUB_TOKEN"
SECRET = "ghp_the-graders-own-token"
# What the orphan holds, so that the watchdog's count visibly includes it (or not)
ORPHAN_BYTES = 160 * 2**20

# A "kernel" that starts an orphan as a notebook would (a double fork, the middle process gone,
# the orphan in a session of its own), says its pid, then runs until its input closes.
STARTS_AN_ORPHAN = f"""
import os, sys, time
reading, writing = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        held = b"x" * {ORPHAN_BYTES}
        os.write(writing, f"{{os.getpid()}}\\n".encode())
        time.sleep(600)
    os._exit(0)
print(os.read(reading, 100).decode().strip(), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def degraded(monkeypatch: pytest.MonkeyPatch) -> Isolation:
    """What this machine offers as probed with bubblewrap not installed and cgroups switched off."""
    monkeypatch.setenv(CGROUPS_SWITCH, "off")
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *args: None if name == "bwrap" else which(name, *args))
    isolation = probe_isolation()
    assert isolation.bubblewrap is None and isolation.cgroups is None and not isolation.memory_limited
    return isolation


def sandbox_in(tmp_path: Path, isolation: Isolation) -> Sandbox:
    scratch = tmp_path / "grader-degraded"
    scratch.mkdir()
    placeholder = tmp_path / "placeholder"
    placeholder.touch()
    return Sandbox(isolation, Limits(), scratch, placeholder, [placeholder], 120)


@pytest.fixture
def leftovers() -> Iterator[list[psutil.Process]]:
    """Processes a test expects gone; any still running after it are killed, so a failing test
    leaves nothing behind."""
    processes: list[psutil.Process] = []
    yield processes
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            continue


def still_running(pid: int, command: list[str]) -> psutil.Process | None:
    """The process ``pid``, if it is still the one that runs ``command`` (a pid is reused)."""
    try:
        process = psutil.Process(pid)
        return process if process.cmdline() == command else None
    except psutil.Error:
        return None


def gone(process: psutil.Process, seconds: float = 5) -> bool:
    try:
        process.wait(timeout=seconds)
    except psutil.TimeoutExpired:
        return False
    except psutil.Error:
        pass
    return not process.is_running()


def test_without_bubblewrap_the_graders_environment_stays_out(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_NAME, SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-graders-key")
    monkeypatch.setenv("LD_PRELOAD", "/tmp/injected.so")

    def environment_with(bubblewrap: str | None) -> dict[str, str]:
        isolation = Isolation(bubblewrap, False, False, None, None)
        spec = tmp_path / "spec.toml"
        return Sandbox(
            isolation, Limits(), tmp_path, tmp_path / "data.npz", [spec], 60, environment={"KERAS_BACKEND": "jax"}
        ).process_environment()

    environment = environment_with(None)
    assert SECRET_NAME not in environment and "AWS_SECRET_ACCESS_KEY" not in environment
    assert "LD_PRELOAD" not in environment
    assert environment["KERAS_BACKEND"] == "jax" and environment["HOME"] == str(tmp_path / "writable" / "work")
    assert environment["GRADER_SPEC"] == str(tmp_path / "spec.toml")
    # The variables it gets in bubblewrap, where only the home and the paths inside differ
    assert set(environment) == set(environment_with("/usr/bin/bwrap"))


@pytest.mark.parametrize("uid_change", [True, False], ids=["own-uid", "graders-uid"])
@pytest.mark.parametrize("ending", ["kernel-exits", "group-killed", "launcher-killed"])
def test_an_orphan_is_counted_by_the_watchdog_and_ends_with_its_sandbox(
    tmp_path, degraded, uid_change, ending, leftovers
):
    """However the kernel ends: on its own, its process group killed (jupyter_client's shutdown),
    or its launcher alone (the evaluator's ``stop``)."""
    # Without bubblewrap a uid of its own may not reach the grader's Python (under /root here):
    # the system's runs the orphan's script, which needs nothing else.
    python = "/usr/bin/python3" if uid_change else sys.executable
    if uid_change and not (os.geteuid() == 0 and shutil.which("setpriv") and Path(python).is_file()):
        pytest.skip("needs root, setpriv and /usr/bin/python3 for a uid of the sandbox's own")
    isolation = dataclasses.replace(degraded, uid_change=uid_change)
    with sandbox_in(tmp_path, isolation) as sandbox, sandbox.confined():
        launcher = subprocess.Popen(
            sandbox.command([python, "-c", STARTS_AN_ORPHAN]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=sandbox.process_environment(), start_new_session=True,  # as jupyter_client starts one
        )  # fmt: skip
        assert launcher.stdin is not None and launcher.stdout is not None
        try:
            orphan = psutil.Process(int(launcher.stdout.readline()))
            leftovers.append(orphan)
            assert orphan.uids().real == (sandbox.uid if uid_change else os.geteuid())
            # What the watchdog counts as the kernel's includes the orphan's memory
            assert held_memory([launcher.pid], 2**40) >= ORPHAN_BYTES
        finally:
            if ending == "kernel-exits":
                launcher.stdin.close()
                assert launcher.wait(timeout=30) == 0
            elif ending == "group-killed":
                os.killpg(launcher.pid, signal.SIGKILL)
            else:
                launcher.kill()
            launcher.wait()
            launcher.stdin.close()
            launcher.stdout.close()
        # Gone with the kernel, before the sandbox's end would kill the processes of its uid
        assert gone(orphan), "the orphan outlived its kernel"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_every_process_of_a_sandboxs_own_uid_ends_with_it(tmp_path, degraded, leftovers):
    """Whatever escaped every other layer, with a uid of its own the sandbox ends it by its uid."""
    with sandbox_in(tmp_path, dataclasses.replace(degraded, uid_change=True)) as sandbox, sandbox.confined():
        # Started past the launcher, as a process could get away: in a session of its own, as the sandbox's uid
        started = subprocess.Popen(
            sandbox.wrapped(["sleep", "600"]), env=sandbox.process_environment(), start_new_session=True
        )
        escaped = psutil.Process(started.pid)
        leftovers.append(escaped)
        deadline = time.monotonic() + 10
        while escaped.uids().real != sandbox.uid and time.monotonic() < deadline:
            time.sleep(0.05)  # setpriv changes its uid, then becomes sleep
        assert escaped.uids().real == sandbox.uid
    assert gone(escaped, 1), "a process of the sandbox's uid outlived it"
    started.wait()


def test_the_launcher_passes_on_interrupts_and_exit_statuses(tmp_path, degraded):
    """Without bubblewrap a reaper stands between jupyter_client and the kernel: an interrupt sent
    to the kernel's process group still reaches the kernel, and the kernel's exit status (killed: in
    ``KILLED``) comes back as before."""
    # 'ready' is printed inside the try: an interrupt that comes right after it is still caught
    # (printed before it, the interrupt raced the try under load and killed the child silently)
    interrupted = (
        "import os, signal, sys, time\n"
        "try:\n    print('ready', flush=True)\n    time.sleep(60)\nexcept KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    with sandbox_in(tmp_path, degraded) as sandbox, sandbox.confined():
        launcher = subprocess.Popen(
            sandbox.command([sys.executable, "-c", interrupted]), stdout=subprocess.PIPE, text=True,
            env=sandbox.process_environment(), start_new_session=True,
        )  # fmt: skip
        assert launcher.stdout is not None
        assert launcher.stdout.readline() == "ready\n"
        os.killpg(launcher.pid, signal.SIGINT)  # as jupyter_client interrupts a kernel
        assert launcher.stdout.readline() == "interrupted\n"
        assert launcher.wait(timeout=30) in KILLED
        launcher.stdout.close()
        exits = subprocess.run(
            sandbox.command([sys.executable, "-c", "raise SystemExit(3)"]), env=sandbox.process_environment(),
            timeout=30,
        )  # fmt: skip
        assert exits.returncode == 3


KERNEL_CELL = (
    "import json, os, subprocess\n"
    "started = subprocess.run(['sh', '-c', 'setsid sleep 600 >/dev/null 2>&1 & echo $!'], capture_output=True,\n"
    "                         text=True)\n"
    "print(json.dumps({'environment': sorted(os.environ), 'orphan': int(started.stdout)}))"
)


@pytest.mark.kernel
def test_a_degraded_kernel_sees_no_secret_and_leaves_no_orphan(mnist_path, tmp_path, monkeypatch, degraded, leftovers):
    """A real kernel without bubblewrap or cgroups: a cell that lists its environment does not
    see the grader's token, and the ``setsid`` process it started ends with the kernel."""
    from grader.judge.pipeline import GradingOptions, kernel_recipe, prepare_context
    from grader.run.warm import WarmKernel

    monkeypatch.setenv(SECRET_NAME, SECRET)
    context = prepare_context(GradingOptions(quick=True, timeout=120), data_path=mnist_path)
    recipe = kernel_recipe(
        context.spec, context.options, context.backend, degraded, context.data_path, context.backend_environment
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(KERNEL_CELL)])
    path = tmp_path / "student.ipynb"
    nbformat.write(notebook, path)
    kernel = WarmKernel(recipe)
    try:
        execution = kernel.run(path, notebook, timeout=120)
    finally:
        kernel.close()
    assert execution.outcome == "completed" and not execution.cell_errors, execution.message
    seen = json.loads(execution.notebook.cells[0].outputs[0]["text"])
    orphan = still_running(seen["orphan"], ["sleep", "600"])
    if orphan is not None:
        leftovers.append(orphan)
    assert SECRET_NAME not in seen["environment"] and "GRADER_SPEC" in seen["environment"]
    assert orphan is None or gone(orphan), "the kernel's setsid process outlived its sandbox"
