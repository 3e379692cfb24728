"""Find out once, before a batch starts, which isolation layers work on this machine."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

from grader.run.isolation import (
    BUBBLEWRAP,
    MEMORY_CGROUP,
    PIDS_CGROUP,
    RLIMITS,
    UID_CHANGE,
    WRITE_CAP,
    Isolation,
    failure,
    mount_failure,
    own_cgroup,
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
    cgroups = {}
    for layer, controller in ((MEMORY_CGROUP, "memory"), (PIDS_CGROUP, "pids")):
        cgroups[controller] = own_cgroup(controller)
        if cgroups[controller] is None:
            reasons[layer] = f"no cgroup v1 {controller} hierarchy in which this process may create groups"
    refused_mount = mount_failure()
    if refused_mount:
        reasons[WRITE_CAP] = f"a tmpfs cannot be mounted here ({refused_mount}); a watchdog stops a kernel instead"
    isolation = Isolation(bubblewrap, True, rlimits, cgroups["memory"], cgroups["pids"], not refused_mount)
    # An unprivileged grader has nothing to drop; as root, the kernel changes uid if that uid can run it.
    if os.geteuid() == 0:
        refused = (
            unprivileged_failure(isolation) if shutil.which("setpriv") else "setpriv (util-linux) is not installed"
        )
        if refused:
            reasons[UID_CHANGE] = refused
            isolation = replace(isolation, uid_change=False)
    return replace(isolation, reasons=reasons)
