"""A grader killed outright leaves its sandboxes behind, sometimes with a kernel still running
in them; the next grader removes them (``sweep_stale_sandboxes``) and leaves alone the
sandboxes of graders still running, and folders it cannot trust."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.run.isolation import Limits
from grader.run.probe import probe_isolation
from grader.run.sandbox import OWNER_FILE, Sandbox, process_start, sweep_stale_sandboxes

ISOLATION = dataclasses.replace(probe_isolation(), bubblewrap=None)

# A grader that starts a process in a sandbox, in a session of its own (as bubblewrap does), and
# dies before it can clean up: the process outlives it, in the sandbox's cgroups and uid.
KILLED_GRADER = """
import json, os, subprocess, sys
from pathlib import Path
from grader.run.isolation import Isolation, Limits
from grader.run.sandbox import Sandbox
given = json.loads(sys.argv[1])
isolation = Isolation(None, True, True, Path(given["memory"]), Path(given["pids"]), given["write_cap"])
scratch = Path(given["scratch"])
scratch.mkdir()
sandbox = Sandbox(isolation, Limits(), scratch, Path(sys.executable), [Path(sys.executable)], 60).__enter__()
confinement = sandbox.confined()  # kept: a context manager that is collected removes its cgroups
confinement.__enter__()
joins = "".join(f'echo $$ > "{group}/cgroup.procs" && ' for group in sandbox.cgroups)
command = ["sh", "-c", joins + 'exec "$@"', "orphan", *sandbox.wrapped(["sleep", given["marker"]])]
subprocess.Popen(command, start_new_session=True)
os._exit(0)
"""


def running(marker: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


@pytest.mark.skipif(
    not (ISOLATION.uid_change and ISOLATION.memory_cgroup and ISOLATION.pids_cgroup),
    reason="needs root: a sandbox's own uid and cgroups are what the sweep kills by",
)
def test_a_killed_graders_sandbox_is_swept_with_its_process_and_a_running_graders_is_kept(tmp_path):
    marker = f"{os.getpid()}{time.monotonic_ns() % 10**6}"
    dead = tmp_path / "grader-dead"
    given = {
        "memory": str(ISOLATION.memory_cgroup),
        "pids": str(ISOLATION.pids_cgroup),
        "write_cap": ISOLATION.write_cap,
        "scratch": str(dead),
        "marker": marker,
    }
    subprocess.run([sys.executable, "-c", KILLED_GRADER, json.dumps(given)], check=True, timeout=60)
    deadline = time.monotonic() + 20
    while not running(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(running(marker)) == 1  # the process outlived its grader
    cgroups = [Path(group) for group in json.loads((dead / OWNER_FILE).read_text())["cgroups"]]
    assert len(cgroups) == 2 and all(group.is_dir() for group in cgroups)
    assert os.path.ismount(dead / "writable") == ISOLATION.write_cap

    live = tmp_path / "grader-live"
    live.mkdir()
    with Sandbox(ISOLATION, Limits(), live, Path(sys.executable), [Path(sys.executable)], 60):
        assert sweep_stale_sandboxes(tmp_path) == [dead]
        assert (live / "writable").is_dir()
    assert not running(marker) and not dead.exists()
    assert not any(group.exists() for group in cgroups)
    assert sweep_stale_sandboxes(tmp_path) == []


def test_a_sandbox_folder_others_may_write_to_is_never_trusted(tmp_path):
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    forged = tmp_path / "grader-forged"
    forged.mkdir()
    # Anyone may write here: what it says to kill (uid 0's processes) is not even read.
    forged.chmod(0o777)
    (forged / OWNER_FILE).write_text(json.dumps({"pid": dead_pid.pid, "started": "1", "uid": 0, "cgroups": []}))
    assert sweep_stale_sandboxes(tmp_path) == []
    assert forged.exists()
    # Once it is private, its owner's death counts; its uid is not a sandbox's, so nothing is killed.
    forged.chmod(0o755)
    assert sweep_stale_sandboxes(tmp_path) == [forged]
    assert not forged.exists()


def test_a_process_is_named_by_its_pid_and_start_so_a_reused_pid_is_not_its_owner():
    assert process_start(os.getpid()) == process_start(os.getpid()) is not None
    ended = subprocess.Popen(["true"])
    started = process_start(ended.pid)
    ended.wait()
    assert started is not None and process_start(ended.pid) is None
