"""Find out once, before a batch starts, which isolation layers work on this machine."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from grader.run.isolation import (
    BUBBLEWRAP,
    CGROUPS_SWITCH,
    MEMORY_CGROUP,
    PIDS_CGROUP,
    RLIMITS,
    UID_CHANGE,
    WRITE_CAP,
    Isolation,
    Limits,
    cgroups_switched_off,
    delegated_cgroup_v2,
    failure,
    mount_failure,
    own_cgroup,
    systemd_scope_failure,
)
from grader.run.sandbox import unprivileged_failure


def probe_isolation() -> Isolation:
    """Find out which layers work here, by trying each."""
    reasons: dict[str, str] = {}
    bubblewrap = shutil.which("bwrap")
    if bubblewrap is None:
        reasons[BUBBLEWRAP] = "bwrap is not installed (Debian: apt-get install bubblewrap)"
    else:
        refused = failure([bubblewrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"])
        if refused:
            bubblewrap, reasons[BUBBLEWRAP] = None, f"bwrap cannot create its namespaces here ({refused})"
    rlimits = shutil.which("prlimit") is not None
    if not rlimits:
        reasons[RLIMITS] = "prlimit (util-linux) is not installed"
    memory, pids, cgroup_v2, systemd_run = _cgroups(reasons)
    refused_mount = mount_failure()
    if refused_mount:
        reasons[WRITE_CAP] = f"a tmpfs cannot be mounted here ({refused_mount}); a watchdog stops a kernel instead"
    isolation = Isolation(
        bubblewrap, True, rlimits, memory, pids, not refused_mount, cgroup_v2=cgroup_v2, systemd_run=systemd_run
    )
    # An unprivileged grader has nothing to drop; as root, the kernel changes uid if that uid can run it.
    if os.geteuid() == 0:
        refused = (
            unprivileged_failure(isolation) if shutil.which("setpriv") else "setpriv (util-linux) is not installed"
        )
        if refused:
            reasons[UID_CHANGE] = refused
            isolation = replace(isolation, uid_change=False)
    return replace(isolation, reasons=reasons)


def _cgroups(reasons: dict[str, str]) -> tuple[Path | None, Path | None, Path | None, str | None]:
    """The cgroups sandboxes get here, the first that works of: cgroup v1 memory and pids groups,
    a delegated cgroup v2 subtree, a systemd scope; and the reasons for what is missing. Without
    a memory cgroup a watchdog enforces the memory limit."""
    watchdog = "; a watchdog over the sandbox's resident memory enforces the memory limit instead"
    if cgroups_switched_off():
        for layer in (MEMORY_CGROUP, PIDS_CGROUP):
            reasons[layer] = f"switched off (${CGROUPS_SWITCH}=off)" + (watchdog if layer == MEMORY_CGROUP else "")
        return None, None, None, None
    memory, pids = own_cgroup("memory"), own_cgroup("pids")
    if memory is not None:
        if pids is None:
            reasons[PIDS_CGROUP] = "no cgroup v1 pids hierarchy in which this process may create groups"
        return memory, pids, None, None
    cgroup_v2, why_not_v2 = delegated_cgroup_v2()
    if cgroup_v2 is not None:
        return None, None, cgroup_v2, None
    systemd_run, why_not_systemd = systemd_scope_failure(Limits())
    if systemd_run is not None:
        return None, None, None, systemd_run
    why = f"no cgroup v1 hierarchy in which this process may create groups; {why_not_v2}; {why_not_systemd}"
    reasons[MEMORY_CGROUP] = why + watchdog
    reasons[PIDS_CGROUP] = why + "; the rlimit on processes still applies"
    return None, None, None, None
