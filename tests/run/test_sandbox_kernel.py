"""Adversarial notebooks: each attack or fault, and the exact outcome it must get.
They run in real, sandboxed kernels (quick mode) and need bubblewrap and root for
the full sandbox; the tests that depend on a layer skip, saying so, without it."""

import dataclasses
import gc
import subprocess
from pathlib import Path

import nbformat
import pytest

from grader.judge.pipeline import GradingOptions, grade_notebook, prepare_context
from grader.run.isolation import Limits
from grader.run.probe import probe_isolation
from grader.run.sandbox import sweep_stale_sandboxes

pytestmark = pytest.mark.kernel
ISOLATION = probe_isolation()
needs_bubblewrap = pytest.mark.skipif(
    ISOLATION.bubblewrap is None, reason="needs bubblewrap (apt-get install bubblewrap)"
)
needs_memory_cgroup = pytest.mark.skipif(
    ISOLATION.memory_cgroup is None, reason="needs a cgroup v1 memory controller (run as root)"
)

LOAD = (
    "import keras\nfrom keras import layers\n"
    "(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()\n"
    "x_train = x_train.reshape(-1, 784).astype('float32') / 255\n"
    "x_test = x_test.reshape(-1, 784).astype('float32') / 255\n"
    "y_train = keras.utils.to_categorical(y_train, 10)\ny_test = keras.utils.to_categorical(y_test, 10)"
)
MODEL_1 = (
    "model_1 = keras.Sequential([keras.Input(shape=(784,)), layers.Dense(64, activation='relu'), layers.Dropout(0.2),\n"
    "    layers.Dense(64, activation='relu'), layers.Dropout(0.2), layers.Dense(10, activation='softmax')])\n"
    "model_1.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.001), loss='categorical_crossentropy')\n"
)
FIT_MODEL_1 = MODEL_1 + "model_1.fit(x_train, y_train, batch_size=128, epochs=30, verbose=0)"


def write_notebook(folder: Path, name: str, *sources: str) -> Path:
    path = folder / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


@pytest.fixture(scope="module")
def context(mnist_path):
    return prepare_context(GradingOptions(quick=True, timeout=60), data_path=mnist_path)


def verdicts(result):
    return {check.id: check.status for check in result.checks}


def warning_of_cell(result, cell: int) -> str:
    return next((w for w in result.warnings if w.startswith(f"cell {cell} raised")), "")


@needs_bubblewrap
def test_escape_attempts_fail_and_leave_the_host_untouched(context, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the answers")
    reports = tmp_path / "reports"
    reports.mkdir()
    notebook = write_notebook(
        tmp_path,
        "escapes",
        "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=5)",
        f"open({str(secret)!r}).read()",
        "open('/etc/grader-was-here', 'w').write('x')",
        f"open({str(reports / 'results.json')!r}, 'w').write('{{}}')",
        "import os\nassert os.getuid() != 0, 'the notebook runs as root'",
        "import glob\nassert not glob.glob('/work/*/submissions') and not glob.glob('/root/*'), 'host files seen'",
        "open('/grader/facts/manifest.json', 'w').write('{}')",
    )
    result = grade_notebook(notebook, context).result
    assert "OSError" in warning_of_cell(result, 0)  # no network: Network is unreachable
    assert "FileNotFoundError" in warning_of_cell(result, 1)  # host files are not there at all
    assert "OSError" in warning_of_cell(result, 2) or "PermissionError" in warning_of_cell(result, 2)
    assert "FileNotFoundError" in warning_of_cell(result, 3)
    if ISOLATION.uid_change:
        assert warning_of_cell(result, 4) == ""
    assert warning_of_cell(result, 5) == ""
    assert list(reports.iterdir()) == []
    assert not Path("/etc/grader-was-here").exists()
    assert secret.read_text() == "the answers"
    # The grader's last cell rewrote the manifest; the garbage never reached the grader.
    assert result.status == "graded" and result.isolation.startswith(("full", "partial"))


@needs_bubblewrap
def test_orphans_are_killed_at_the_time_limit(mnist_path, tmp_path, caplog):
    context = prepare_context(GradingOptions(quick=True, timeout=8), data_path=mnist_path)
    marker = "987654"
    notebook = write_notebook(
        tmp_path,
        "orphans",
        f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)",
        "while True:\n    pass",
    )
    result = grade_notebook(notebook, context).result
    assert result.status == "timeout"
    survivors = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout
    assert survivors == ""
    # nbclient's poller, pending after the time limit, was ended before its event loop was closed.
    gc.collect()
    assert not [record for record in caplog.records if record.name == "asyncio"]


@pytest.mark.parametrize(
    "cgroups",
    [
        pytest.param(True, marks=needs_memory_cgroup, id="memory-cgroup"),
        pytest.param(False, id="watchdog"),  # a host without cgroups (GRADER_CGROUPS=off)
    ],
)
def test_running_out_of_memory_is_the_notebooks_fault_and_keeps_earlier_models(context, tmp_path, cgroups):
    limits = Limits(memory_bytes=int(2.5 * 2**30))
    isolation = (
        context.isolation if cgroups else dataclasses.replace(context.isolation, memory_cgroup=None, pids_cgroup=None)
    )
    assert isolation.memory_limited == cgroups
    small = dataclasses.replace(
        context, isolation=isolation, options=dataclasses.replace(context.options, limits=limits)
    )
    notebook = write_notebook(
        tmp_path,
        "memory",
        LOAD,
        FIT_MODEL_1,
        # touched page by page, as a real hog is: the watchdog sees it grow
        "import numpy as np, time\nhog = []\nfor _ in range(24):\n    hog.append(np.ones(2**28, 'uint8'))\n"
        "    time.sleep(0.1)",
    )
    result = grade_notebook(notebook, small).result
    assert (result.status, result.fault) == ("error", "submission")
    assert "ran out of memory while running cell 2" in result.error and "2.5 GiB" in result.error
    assert verdicts(result)["model_1.architecture"] == verdicts(result)["model_1.training"] == "pass"


def test_without_a_tmpfs_a_watchdog_stops_a_kernel_that_writes_past_its_limit(context, tmp_path):
    limits = Limits(write_bytes=64 * 2**20)
    watched = dataclasses.replace(
        context,
        isolation=dataclasses.replace(context.isolation, write_cap=False),
        options=dataclasses.replace(context.options, limits=limits),
    )
    notebook = write_notebook(
        tmp_path,
        "writer",
        LOAD,
        FIT_MODEL_1,
        "import time, grader.kernel as kernel\nwith open(kernel._ledger.facts_dir / 'junk', 'wb') as out:\n"
        "    for _ in range(400):\n        out.write(b'0' * 2**20)\n        out.flush()\n        time.sleep(0.01)",
    )
    result = grade_notebook(notebook, watched).result
    assert result.status == "error" and "the notebook wrote more than its limit of 64 MiB" in result.error
    assert verdicts(result)["model_1.training"] == "pass"  # what it trained before stays graded


@pytest.mark.slow  # a batch graded, killed and graded again (the grader's own faults' retries run by default)
def test_a_batch_killed_mid_way_finishes_on_the_next_run_without_regrading(mnist_path, tmp_path):
    import json
    import os
    import signal
    import sqlite3
    import sys
    import time

    folder, out = tmp_path / "class", tmp_path / "out"
    folder.mkdir()
    for name in ("ada", "bob", "cyd"):
        write_notebook(folder, name, LOAD, f"# {name}\n" + FIT_MODEL_1)
    command = [
        sys.executable,
        "-m",
        "grader",
        "grade",
        str(folder),
        "--out",
        str(out),
        "--quick",
        "--data",
        str(mnist_path),
    ]
    first = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stored() -> int:
        try:
            with sqlite3.connect(out / "results.sqlite") as db:
                return int(db.execute("SELECT count(*) FROM graded").fetchone()[0])
        except sqlite3.Error:
            return 0

    deadline = time.monotonic() + 180
    while stored() < 1 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done_before = stored()
    assert 1 <= done_before < 3

    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"Reused {done_before} earlier results" in second.stderr
    # What the killed run left in its sandboxes (a kernel it was starting may outlive it) is gone.
    assert sweep_stale_sandboxes() == []
    results = json.loads((out / "results.json").read_text())["submissions"]
    assert sorted(r["id"] for r in results) == ["ada", "bob", "cyd"]
    assert [(r["status"], r["score"], r["max_score"]) for r in results] == [("graded", 5, 15)] * 3  # model_1 only
    assert stored() == 3
