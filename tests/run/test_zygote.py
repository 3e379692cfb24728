"""Kernels forked from a warm zygote: each in a sandbox as strong as a cold kernel's, nothing
of one notebook reaching the next, the fork refused where it would not be sound, and cold
kernels wherever a zygote cannot serve."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from grader.judge import pipeline
from grader.judge.pipeline import GradingOptions, grade_notebook, prepare_context
from grader.run import warm
from grader.run import zygote as zygote_module
from grader.run.isolation import Isolation
from grader.run.probe import probe_isolation
from grader.run.sandbox import sweep_stale_sandboxes
from grader.run.zygote import SWITCH, Zygote, Zygotes, usable_for

pytestmark = pytest.mark.kernel
ISOLATION = probe_isolation()
needs_forking = pytest.mark.skipif(usable_for(ISOLATION) is not None, reason=str(usable_for(ISOLATION)))
needs_root = pytest.mark.skipif(not ISOLATION.uid_change, reason="needs root for the uid change")

# Random numbers: numpy's, and the instrumentation's own generators (which rows it samples)
DRAW = (
    "import numpy\nfrom grader.kernel import draws, ledger\n"
    "print('draw', numpy.random.randint(2**62), draws._OFFSETS.random(), ledger._SAMPLED.random())"
)
# What the first notebook leaves behind, in every place a notebook can reach.
LEAVES = [
    "open('/tmp/work/left.txt', 'w').write('x'); open('/tmp/left.txt', 'w').write('x')",
    "import builtins, os, sys, threading, time\nbuiltins.LEFT = 1\nos.environ['LEFT'] = '1'\nsys.modules['left'] = sys",
    "import keras\nkeras.Model.fit = lambda *a, **k: 'patched'\nkeras.layers.Dense.__init__ = None",
    "threading.Thread(target=time.sleep, args=(600,), name='left-behind', daemon=True).start()",
    DRAW,
    # Keras imported matplotlib in the zygote, before the kernel existed: plots still show inline
    "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
]
# What the second looks for: each cell fails (AssertionError) if it finds it.
LOOKS = [
    "import os\nassert not os.path.exists('/tmp/work/left.txt') and not os.path.exists('/tmp/left.txt')",
    "import builtins, sys\n"
    "assert not hasattr(builtins, 'LEFT') and 'LEFT' not in os.environ and 'left' not in sys.modules",
    "import keras\nassert keras.Model.fit.__name__ != '<lambda>' and keras.layers.Dense.__init__ is not None",
    "import threading\nassert not [t for t in threading.enumerate() if t.name == 'left-behind']",
    DRAW,
    # The sandbox's own: no capability, no new privileges, not root, only its own processes
    "status = dict(line.split(':\\t', 1) for line in open('/proc/self/status').read().splitlines() if ':\\t' in line)\n"
    "assert status['CapEff'].strip() == status['CapBnd'].strip() == status['CapInh'].strip() == '0' * 16, status\n"
    "assert status['NoNewPrivs'].strip() == '1' and os.getuid() != 0, status",
    # Its own pid namespace: the sandbox's init, the holder and the kernel, not the host's processes
    "assert len([p for p in os.listdir('/proc') if p.isdigit()]) < 10, os.listdir('/proc')",
    "assert 'GRADER_TEST_SECRET' not in os.environ and os.getcwd() == '/tmp/work'",
    # As a kernel started cold there: its import path, Keras' home, its own /proc files, what it may import
    "import keras, sys\nassert sys.path[0] == '/tmp/work' and keras.src.backend.config.keras_home() == '/tmp/keras'\n"
    "assert open('/proc/self/environ', 'rb').read() and 'grader-zygote' not in repr(sys.path)\n"
    "import rfc3987_syntax",
    # Every process its uid may signal: none but itself (not the process that holds its sandbox)
    "import signal\nassert os.getppid() != 0  # else kill(getppid()) signals its own group\n"
    "try:\n    os.kill(-1, signal.SIGTERM)\nexcept ProcessLookupError:\n    pass",
    "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=5)",
]


def write_notebook(folder: Path, name: str, sources: list[str]) -> Path:
    path = folder / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


def outputs(graded) -> list[dict]:
    notebook = nbformat.reads(graded.notebook, as_version=4)
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


def draws(graded) -> list[str]:
    printed = [output.get("text", "") for output in outputs(graded)]
    return [line for text in printed for line in text.splitlines() if line.startswith("draw")]


@pytest.fixture
def own_pools(monkeypatch):
    """This process' zygotes and spare kernels as a new process has them: none started, none
    refused (an earlier test's kernel that failed to start refuses its zygote for the process)."""
    zygotes, kernels = Zygotes(), warm.KernelPool()
    monkeypatch.setattr(warm, "ZYGOTES", zygotes)
    monkeypatch.setattr(pipeline, "KERNELS", kernels)
    yield
    kernels.close()
    zygotes.close()


@needs_forking
@needs_root
def test_nothing_of_one_forked_notebook_reaches_the_next(mnist_path, tmp_path, monkeypatch, own_pools):
    monkeypatch.setenv(SWITCH, "on")
    monkeypatch.setenv("GRADER_TEST_SECRET", "the grader's token")
    context = prepare_context(GradingOptions(quick=True, timeout=120), data_path=mnist_path)
    first = grade_notebook(write_notebook(tmp_path, "leaves", LEAVES), context, more_to_come=True)
    second = grade_notebook(write_notebook(tmp_path, "looks", LOOKS), context)
    assert first.result.kernel_start == second.result.kernel_start == "forked"
    assert not [w for w in first.result.warnings if " raised " in w], first.result.warnings
    raised = [w for w in second.result.warnings if " raised " in w]
    # Only the network cell fails, and for want of a network
    assert len(raised) == 1 and raised[0].startswith("cell 10 raised OSError"), raised
    # Each kernel draws its own random numbers, though both were forked from one process
    (drawn_first,), (drawn_second,) = draws(first), draws(second)
    assert all(a != b for a, b in zip(drawn_first.split()[1:], drawn_second.split()[1:], strict=True))
    assert [output for output in outputs(first) if "image/png" in output.get("data", {})]


def test_the_zygote_refuses_to_fork_with_a_thread_or_a_device_open():
    script = (
        "import threading, time, grader.kernel.zygote as z\n"
        "assert z.unsafe_to_fork() is None, z.unsafe_to_fork()\n"
        "z.DEVICE_PREFIXES = ('/dev/null',)\n"
        "held = open('/dev/null')\n"
        "print(z.unsafe_to_fork())\n"
        "held.close(); z.DEVICE_PREFIXES = ('/dev/nvidia',)\n"
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "print(z.unsafe_to_fork())\n"
    )
    environment = {"OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=60)
    assert run.returncode == 0, run.stderr
    device, thread = run.stdout.splitlines()
    assert device == "it has a device open (/dev/null): a device must be opened in the kernel only"
    assert thread == "it runs 2 threads: something it imported started them"


def test_kernels_start_cold_where_no_sandbox_can_be_built_around_a_fork(monkeypatch):
    bare = Isolation(bubblewrap=None, uid_change=False, rlimits=True, memory_cgroup=None, pids_cgroup=None)
    assert usable_for(bare) == "without bubblewrap there is no sandbox to fork a kernel into"
    monkeypatch.setenv(SWITCH, "on")
    assert Zygotes().socket_for(bare, {"KERAS_BACKEND": "tensorflow"}, batch=True) is None
    monkeypatch.setenv(SWITCH, "off")
    assert Zygotes().socket_for(ISOLATION, {"KERAS_BACKEND": "tensorflow"}, batch=True) is None


@needs_forking
def test_a_zygote_that_cannot_start_leaves_its_kernels_cold(monkeypatch):
    monkeypatch.delenv(SWITCH, raising=False)
    zygotes = Zygotes()
    # Keras refuses a backend it does not know: the zygote ends before it is ready.
    assert zygotes.socket_for(ISOLATION, {"KERAS_BACKEND": "no-such-backend"}, batch=True) is None
    # Refused once, it is not tried again for each kernel
    monkeypatch.setattr(zygote_module, "Zygote", lambda environment: pytest.fail("a refused zygote was started again"))
    assert zygotes.socket_for(ISOLATION, {"KERAS_BACKEND": "no-such-backend"}, batch=True) is None
    # A single notebook, not in a batch, starts cold without trying a zygote at all.
    assert Zygotes().socket_for(ISOLATION, {"KERAS_BACKEND": "tensorflow"}, batch=False) is None


@pytest.mark.slow  # the default run keeps its 15 minutes; the leftover-state test forks there
@needs_forking
def test_a_running_zygote_is_used_only_for_the_environment_it_was_started_for(monkeypatch):
    environment = {"KERAS_BACKEND": "tensorflow"}
    zygote = Zygote(environment)
    try:
        monkeypatch.setenv(SWITCH, str(zygote.socket))
        assert Zygotes().socket_for(ISOLATION, environment, batch=False) == zygote.socket
        assert Zygotes().socket_for(ISOLATION, {"KERAS_BACKEND": "jax"}, batch=False) is None
        monkeypatch.setenv(SWITCH, str(zygote.folder / "no-such.sock"))
        assert Zygotes().socket_for(ISOLATION, environment, batch=False) is None
    finally:
        zygote.close()
    assert not zygote.folder.exists()


GRADER_THEN_KILLED = """
import json, os, sys, time
from pathlib import Path
from grader.judge.pipeline import GradingOptions, kernel_recipe, prepare_context
from grader.run import warm
from grader.run import zygote as zygote_module
context = prepare_context(GradingOptions(quick=True, timeout=120), data_path=Path(sys.argv[1]))
recipe = kernel_recipe(context.spec, context.options, context.backend, context.isolation, context.data_path,
                       context.backend_environment)
kernel = warm.WarmKernel(recipe, batch=True)
while not kernel._ready:
    time.sleep(0.01)
print(json.dumps({"kernel": kernel.sandbox.forked_kernel_pid()}), flush=True)
time.sleep(600)
"""


@pytest.mark.slow  # the default run keeps its 15 minutes; the leftover-state test forks there
@needs_forking
def test_a_forked_kernel_ends_with_the_grader_that_asked_for_it(mnist_path, tmp_path):
    grader = subprocess.Popen(
        [sys.executable, "-c", GRADER_THEN_KILLED, str(mnist_path)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, SWITCH: "on"},
    )  # fmt: skip
    try:
        kernel = json.loads(grader.stdout.readline())["kernel"]
        assert isinstance(kernel, int) and psutil.pid_exists(kernel)
    finally:
        grader.kill()
        grader.wait()
        grader.stdout.close()
    deadline = time.monotonic() + 15
    while psutil.pid_exists(kernel) and psutil.Process(kernel).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the forked kernel outlived its grader"
        time.sleep(0.1)
    sweep_stale_sandboxes()
