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
from grader.run.sandbox import OWNER_FILE, Sandbox, process_start, sweep_stale_sandboxes, this_process

ISOLATION = dataclasses.replace(probe_isolation(), bubblewrap=None)

# A grader that starts a process in a sandbox, in a session of its own (as bubblewrap does), and
# dies before it can clean up: the process outlives it, in the sandbox's cgroups and uid.
KILLED_GRADER = """
import json, os, subprocess, sys
from pathlib import Path
from grader.run.isolation import Isolation, Limits
from grader.run.sandbox import Sandbox
given = json.loads(sys.argv[1])
os.umask(0o002)  # a desktop's default: the owner file must still be one only its user may write
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


def dead_owner(**fields) -> dict:
    """What ``owner.json`` says of a grader that has ended."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return {**this_process(), "pid": ended.pid, "started": "1", "uid": None, "cgroups": [], **fields}


def plant(folder: Path, owner: dict) -> Path:
    folder.mkdir()
    folder.chmod(0o755)
    (folder / OWNER_FILE).write_text(json.dumps(owner))
    (folder / OWNER_FILE).chmod(0o644)
    return folder


def test_only_what_no_one_else_could_have_written_is_swept(tmp_path):
    # What it would kill, were a forged owner.json believed: uid 0's processes (this test's own).
    writable = plant(tmp_path / "grader-others-may-write-the-folder", dead_owner(uid=0))
    writable.chmod(0o777)
    loose = plant(tmp_path / "grader-others-may-write-the-file", dead_owner(uid=0))
    (loose / OWNER_FILE).chmod(0o666)
    linked = plant(tmp_path / "grader-a-link", dead_owner())
    (linked / OWNER_FILE).rename(linked / "elsewhere.json")
    (linked / OWNER_FILE).symlink_to(linked / "elsewhere.json")
    fifo = tmp_path / "grader-a-fifo"
    fifo.mkdir()
    fifo.chmod(0o755)
    os.mkfifo(fifo / OWNER_FILE, 0o644)  # read, it would hang the grader's start
    elsewhere = plant(tmp_path / "grader-another-container", dead_owner(pid_namespace="pid:[1]"))
    assert sweep_stale_sandboxes(tmp_path) == []
    assert all(folder.exists() for folder in (writable, loose, linked, fifo, elsewhere))

    # A cgroup path that climbs out of /sys/fs/cgroup, to a "cgroup" listing a process that must live.
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        climbed = tmp_path / "grader-0123456789ab"
        climbed.mkdir()
        (climbed / "cgroup.procs").write_text(f"{bystander.pid}\n")
        path = "/sys/fs/cgroup/" + "../" * 3 + str(climbed).lstrip("/")
        swept = plant(tmp_path / "grader-sweepable", dead_owner(cgroups=[path]))
        # Every folder above is still refused; this one's owner is gone, and its cgroup is not believed.
        assert sweep_stale_sandboxes(tmp_path) == [swept]
        assert bystander.poll() is None and climbed.exists() and not swept.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_a_sweep_in_a_temporary_folder_others_may_rename_in_removes_nothing(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    left = plant(shared / "grader-left", dead_owner())
    shared.chmod(0o777)  # no sticky bit: anyone could swap the folder between the check and the removal
    assert sweep_stale_sandboxes(shared) == [] and left.exists()
    shared.chmod(0o1777)
    assert sweep_stale_sandboxes(shared) == [left] and not left.exists()


def test_a_process_is_named_by_its_pid_and_start_so_a_reused_pid_is_not_its_owner():
    assert process_start(os.getpid()) == process_start(os.getpid()) is not None
    ended = subprocess.Popen(["sleep", "60"])
    started = process_start(ended.pid)
    ended.kill()
    deadline = time.monotonic() + 10
    while process_start(ended.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started is not None and process_start(ended.pid) is None  # a zombie has ended, reaped or not
    ended.wait()


# A grader without root (no uid of the sandbox's own, no cgroups) that starts its kernel, names
# it, and dies: the kernel, in a session of its own, outlives it.
KILLED_UNPRIVILEGED_GRADER = """
import json, os, subprocess, sys
from pathlib import Path
from grader.run.isolation import Isolation, Limits
from grader.run.sandbox import Sandbox
given = json.loads(sys.argv[1])
scratch = Path(given["scratch"])
scratch.mkdir()
sandbox = Sandbox(Isolation(None, False, False, None, None), Limits(), scratch, Path(sys.executable),
                  [Path(sys.executable)], 60).__enter__()
kernel = subprocess.Popen(["sleep", given["marker"]], start_new_session=True)
sandbox.record_kernel(kernel.pid)
os._exit(0)
"""


def test_without_root_the_kernel_a_killed_grader_named_is_stopped(tmp_path):
    marker = f"{os.getpid()}{time.monotonic_ns() % 10**6 + 1}"
    dead = tmp_path / "grader-dead"
    given = {"scratch": str(dead), "marker": marker}
    subprocess.run([sys.executable, "-c", KILLED_UNPRIVILEGED_GRADER, json.dumps(given)], check=True, timeout=60)
    assert len(running(marker)) == 1  # the kernel outlived its grader
    assert sweep_stale_sandboxes(tmp_path) == [dead]
    assert not running(marker) and not dead.exists()
