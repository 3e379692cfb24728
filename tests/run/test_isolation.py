"""The isolation layers without a kernel: cgroups of every kind (cgroup v2 and systemd on fake
trees and commands, since this machine has cgroup v1), switched off; uids no two live sandboxes
share; the evaluator's sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.run import isolation as isolation_module
from grader.run import sandbox as sandbox_module
from grader.run.isolation import MEMORY_CGROUP, PIDS_CGROUP, Isolation, Limits, delegated_cgroup_v2
from grader.run.probe import probe_isolation
from grader.run.sandbox import EvaluatorSandbox, NoFreeUid, Sandbox

PROBED = probe_isolation()


def sandbox_in(tmp_path: Path, isolation: Isolation, name: str = "grader-a") -> Sandbox:
    scratch = tmp_path / name
    scratch.mkdir()
    placeholder = tmp_path / "placeholder"
    placeholder.touch()
    return Sandbox(isolation, Limits(memory_bytes=2**30, processes=64), scratch, placeholder, [placeholder], 60)


def test_cgroups_switched_off_leave_the_memory_limit_to_the_watchdog(monkeypatch):
    monkeypatch.setenv("GRADER_CGROUPS", "off")
    probed = probe_isolation()
    assert probed.cgroups is None and not probed.memory_limited
    assert (
        "switched off ($GRADER_CGROUPS=off); a watchdog over the sandbox's resident memory"
        in probed.reasons[MEMORY_CGROUP]
    )
    assert PIDS_CGROUP in probed.reasons


def test_a_delegated_cgroup_v2_folder_is_found_only_with_memory_and_pids_for_its_children(tmp_path, monkeypatch):
    own = tmp_path / "grader.slice"
    own.mkdir()
    monkeypatch.setattr(isolation_module, "_own_cgroup_paths", lambda: {"": "/grader.slice"})
    (own / "cgroup.subtree_control").write_text("cpu pids\n")
    folder, why = delegated_cgroup_v2(tmp_path)
    assert folder is None and "does not give its children memory and pids limits" in why and "GRADER_CGROUP" in why
    (own / "cgroup.subtree_control").write_text("cpu memory pids\n")
    assert delegated_cgroup_v2(tmp_path) == (own, "")
    named = tmp_path / "delegated"
    named.mkdir()
    (named / "cgroup.subtree_control").write_text("memory pids\n")
    monkeypatch.setenv("GRADER_CGROUP", str(named))
    assert delegated_cgroup_v2(tmp_path) == (named, "")


def test_a_cgroup_v2_sandbox_gets_its_limits_and_knows_when_it_ran_out_of_memory(tmp_path):
    base = tmp_path / "delegated"
    base.mkdir()
    sandbox = sandbox_in(tmp_path, Isolation(None, False, False, None, None, cgroup_v2=base))
    (group,) = sandbox.cgroups
    assert group.parent == base and sandbox.isolation.cgroups == "v2"
    with sandbox.confined():
        assert (group / "memory.max").read_text() == str(2**30) and (group / "pids.max").read_text() == "64"
        assert not sandbox.out_of_memory()
        (group / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
        assert sandbox.out_of_memory()
    assert f'echo $$ > "{group}/cgroup.procs"' in sandbox.command(["true"])[2]


def test_a_systemd_host_puts_each_sandbox_in_a_scope_with_its_limits(tmp_path):
    sandbox = sandbox_in(tmp_path, Isolation(None, False, False, None, None, systemd_run="/usr/bin/systemd-run"))
    command = sandbox.command(["python3", "kernel"])
    scope = command.index("/usr/bin/systemd-run")
    assert command[scope + 1 : scope + 4] == ["--scope", "--quiet", "--collect"]
    assert f"MemoryMax={2**30}" in command and "TasksMax=64" in command and command[-2:] == ["python3", "kernel"]
    assert sandbox.cgroups == [] and sandbox.isolation.memory_limited


@pytest.mark.skipif(os.geteuid() != 0 or not PROBED.uid_change, reason="needs root and setpriv for uids of its own")
def test_no_two_live_sandboxes_share_a_uid(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox_module, "SANDBOX_UIDS", range(2**20 + 77, 2**20 + 79))
    isolation = Isolation(None, True, False, None, None)
    first = sandbox_in(tmp_path, isolation, "grader-first").__enter__()
    second = sandbox_in(tmp_path, isolation, "grader-second").__enter__()
    try:
        assert {first.uid, second.uid} == {2**20 + 77, 2**20 + 78}
        with pytest.raises(NoFreeUid, match="every sandbox uid"):
            sandbox_in(tmp_path, isolation, "grader-third").__enter__()
        owner = tmp_path / "grader-first" / "owner.json"
        gone = {**json.loads(owner.read_text()), "started": "a process long gone"}
        owner.write_text(json.dumps(gone))  # its grader died: its uid is free again
        assert sandbox_in(tmp_path, isolation, "grader-fourth").__enter__().uid == first.uid
    finally:
        for sandbox in (first, second):
            sandbox.__exit__(None, None, None)


@pytest.mark.skipif(PROBED.bubblewrap is None, reason="needs bubblewrap (apt-get install bubblewrap)")
def test_the_evaluator_runs_as_isolated_as_a_kernel(tmp_path):
    data = tmp_path / "data.npz"
    data.write_bytes(b"the data set")
    scratch = tmp_path / "grader-evaluator"
    scratch.mkdir()
    probe = (
        "import json, os, socket\n"
        "seen = {'uid': os.getuid(), 'data': open('/grader/data.npz').read()}\n"
        "seen['inbox'] = open('/grader/inbox/config.json').read()\n"
        "seen['root'] = sorted(os.listdir('/root')) if os.path.isdir('/root') else []\n"
        "for what, attempt in (('network', lambda: socket.create_connection(('1.1.1.1', 53), timeout=3)),\n"
        "                      ('write', lambda: open('/grader/inbox/config.json', 'w'))):\n"
        "    try:\n        attempt()\n        seen[what] = 'allowed'\n"
        "    except OSError as error:\n        seen[what] = type(error).__name__\n"
        "print(json.dumps(seen))"
    )
    with EvaluatorSandbox(PROBED, Limits(), scratch, data, 60) as sandbox, sandbox.confined():
        (sandbox.inbox / "config.json").write_text("{}")
        (sandbox.inbox / "config.json").chmod(0o644)
        completed = subprocess.run(
            sandbox.command([sys.executable, "-c", probe]), capture_output=True, text=True,
            env=sandbox.process_environment(), timeout=60,
        )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout)
    assert (seen["data"], seen["inbox"]) == ("the data set", "{}")
    assert seen["network"] != "allowed" and seen["write"] != "allowed"
    assert ".ssh" not in seen["root"] and ".bashrc" not in seen["root"]  # the host's home is not there
    if PROBED.uid_change and os.geteuid() == 0:
        assert seen["uid"] != 0


def test_a_data_file_is_served_read_only_in_the_notebooks_folder_and_not_counted_as_written(tmp_path):
    """Without bubblewrap the kernel gets a link to a read-only copy outside what it may write;
    with it, the grader's file bound in read-only; either way under the spec's name, in the
    folder the notebook runs in."""
    data = tmp_path / "digits-from-elsewhere.npz"
    data.write_bytes(b"x" * 5000)
    limits = Limits(memory_bytes=2**30, processes=64)
    (tmp_path / "plain").mkdir()
    plain = Sandbox(Isolation(None, False, False, None, None), limits, tmp_path / "plain" / "s", data, [data], 60,
                    data_name="digits.npz")  # fmt: skip
    (tmp_path / "plain" / "s").mkdir()
    with plain:
        served = plain.workdir / "digits.npz"
        assert served.read_bytes() == data.read_bytes() and served.stat().st_mode & 0o777 == 0o444
        # the copy lies outside what the notebook may write: only the link's own bytes count
        assert served.is_symlink() and plain.written_bytes() == len(str(served.readlink()))
        served.unlink()  # a notebook may take the name for a file of its own: that one counts
        served.write_bytes(b"y" * 100)
        assert plain.written_bytes() == 100 and data.read_bytes() == b"x" * 5000
    wrapped = Sandbox(Isolation("/usr/bin/bwrap", False, False, None, None), limits, tmp_path, data, [data], 60,
                      data_name="digits.npz")  # fmt: skip
    arguments = wrapped._bubblewrap_arguments()
    bind = arguments.index(f"{sandbox_module.INSIDE_WORKDIR}/digits.npz")
    assert arguments[bind - 2 : bind] == ["--ro-bind", str(data)]
    assert bind > arguments.index(sandbox_module.INSIDE_WORKDIR)  # after the folder is made
