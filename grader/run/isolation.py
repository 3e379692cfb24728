"""The isolation layers a notebook's kernel may run under, the limits they enforce, and the
tests of whether this machine offers each (``grader.run.probe`` runs them). A layer that cannot
work here is left out with its reason, and every result records the level it was graded under.

Layers:
- bubblewrap: no network (a private loopback only), a read-only view of the system and the
  Python installation and nothing else of the host, a private size-capped ``/tmp``, every
  process killed with the sandbox;
- a real uid change, when the grader runs as root (setpriv): each sandbox its own uid, so
  that a per-user limit (processes) is a per-sandbox limit;
- rlimits (prlimit): CPU time, file size, open files, processes, no core dumps;
- memory and pids cgroups, so running out of memory is recognised and one notebook's
  processes count against it alone: cgroup v1 groups, else a cgroup v2 subtree delegated to
  the grader, else a ``systemd-run`` scope; without any, a watchdog over the resident memory
  of the sandbox's processes stops it past its memory limit;
- a size-capped tmpfs under the folders the kernel writes to on the host, so a notebook
  cannot fill the grader's disk (without it, a watchdog stops a kernel that writes too much).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# The layers, as warnings and results name them.
BUBBLEWRAP = "bubblewrap (no network, read-only system, private scratch)"
UID_CHANGE = "a change to an unprivileged uid"
RLIMITS = "rlimits (prlimit)"
MEMORY_CGROUP = "a memory cgroup"
PIDS_CGROUP = "a pids cgroup"
WRITE_CAP = "a size-capped tmpfs for what the notebook writes"
LAYERS = (BUBBLEWRAP, UID_CHANGE, RLIMITS, MEMORY_CGROUP, PIDS_CGROUP, WRITE_CAP)
# GRADER_CGROUPS=off leaves the cgroup layers out (a host whose cgroups misbehave; the tests of
# the watchdog that replaces them)
CGROUPS_SWITCH = "GRADER_CGROUPS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Where a host delegates a cgroup v2 subtree to the grader, if not its own cgroup
DELEGATED_CGROUP = "GRADER_CGROUP"
CgroupKind = Literal["v1", "v2", "systemd"]


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 8 * 2**30
    processes: int = 4096  # threads count: TensorFlow starts dozens
    file_bytes: int = 2 * 2**30
    scratch_bytes: int = 2 * 2**30
    open_files: int = 4096
    # All the notebook may write where the grader reads: exported models, fingerprints, its folder.
    write_bytes: int = 2**30


@dataclass(frozen=True)
class Isolation:
    """The isolation layers this machine offers, and why each missing one is missing."""

    bubblewrap: str | None
    uid_change: bool
    rlimits: bool
    # cgroup v1: the folders of the memory and pids hierarchies to make groups in
    memory_cgroup: Path | None
    pids_cgroup: Path | None
    write_cap: bool = False
    reasons: dict[str, str] = field(default_factory=dict)
    # cgroup v2: the delegated folder to make groups in, with memory and pids enabled for them
    cgroup_v2: Path | None = None
    # Else systemd-run, which puts each sandbox in a scope of its own with these limits
    systemd_run: str | None = None

    @property
    def cgroups(self) -> CgroupKind | None:
        """How sandboxes get their memory and pids limits, if by cgroups."""
        if self.memory_cgroup is not None or self.pids_cgroup is not None:
            return "v1"
        return "v2" if self.cgroup_v2 is not None else "systemd" if self.systemd_run is not None else None

    @property
    def memory_limited(self) -> bool:
        """Whether the kernel enforces the memory limit (else a watchdog does)."""
        return self.memory_cgroup is not None or self.cgroup_v2 is not None or self.systemd_run is not None

    def missing(self) -> list[str]:
        present = {
            BUBBLEWRAP: self.bubblewrap is not None,
            UID_CHANGE: self.uid_change,
            RLIMITS: self.rlimits,
            MEMORY_CGROUP: self.memory_limited,
            PIDS_CGROUP: self.pids_cgroup is not None or self.cgroup_v2 is not None or self.systemd_run is not None,
            WRITE_CAP: self.write_cap,
        }
        return [
            layer + (f": {self.reasons[layer]}" if layer in self.reasons else "")
            for layer in LAYERS
            if not present[layer]
        ]

    @property
    def level(self) -> str:
        missing = self.missing()
        return "full" if not missing else "none" if len(missing) == len(LAYERS) else "partial"

    def describe(self) -> str:
        missing = self.missing()
        return self.level + (f" (missing: {'; '.join(missing)})" if missing else "")


def failure(command: list[str], timeout: float = 20, environment: dict[str, str] | None = None) -> str | None:
    """Why ``command`` failed (the last line it printed), or None when it succeeded; run with
    ``environment`` when given, else this process's."""
    try:
        completed = subprocess.run(command, capture_output=True, timeout=timeout, text=True, env=environment)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if completed.returncode == 0:
        return None
    lines = (completed.stderr or completed.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {completed.returncode}"


def mount_failure() -> str | None:
    if os.geteuid() != 0:
        return "only root may mount one"
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as folder:
        refused = failure(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", folder])
        if refused is None:
            failure(["umount", folder])
    return refused


def cgroups_switched_off() -> bool:
    return os.environ.get(CGROUPS_SWITCH, "").lower() in ("off", "0", "no")


def _own_cgroup_paths() -> dict[str, str]:
    """This process's cgroup paths by controller list (``""`` for cgroup v2's line)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    return {line.split(":", 2)[1]: line.split(":", 2)[2] for line in lines if line.count(":") >= 2}


def own_cgroup(controller: str, root: Path = CGROUP_ROOT) -> Path | None:
    """This process's cgroup v1 folder for ``controller``, if we may create children in it."""
    for controllers, path in _own_cgroup_paths().items():
        if controller in controllers.split(","):
            folder = root / controller / path.lstrip("/")
            return folder if _may_make_children(folder) else None
    return None


def delegated_cgroup_v2(root: Path = CGROUP_ROOT) -> tuple[Path | None, str]:
    """A cgroup v2 folder in which sandboxes' groups can be made with memory and pids limits
    (``$GRADER_CGROUP``, else this process's own cgroup), and why there is none."""
    named = os.environ.get(DELEGATED_CGROUP)
    own = _own_cgroup_paths().get("")
    if named:
        folder = Path(named)
    elif own is not None:
        folder = root / own.lstrip("/")
    else:
        return None, "no cgroup v2 hierarchy"
    try:
        enabled = (folder / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None, f"no cgroup v2 hierarchy at {folder}"
    if not {"memory", "pids"} <= set(enabled):
        return None, (
            f"the cgroup v2 folder {folder} does not give its children memory and pids limits "
            f"(its cgroup.subtree_control: {' '.join(enabled) or 'empty'}); delegate one with both and name it "
            f"in ${DELEGATED_CGROUP}"
        )
    if not _may_make_children(folder):
        return None, f"this process may not make groups in the cgroup v2 folder {folder}"
    return folder, ""


def systemd_scope_failure(limits: Limits) -> tuple[str | None, str]:
    """``systemd-run``, if it can put a command in a scope with a memory and a tasks limit here,
    and why not."""
    program = shutil.which("systemd-run")
    if program is None or not Path("/run/systemd/system").is_dir():
        return None, "systemd is not running here"
    refused = failure([program, *systemd_scope_arguments(limits, f"grader-probe-{uuid.uuid4().hex[:8]}"), "true"])
    return (None, f"systemd-run cannot make a scope here ({refused})") if refused else (program, "")


def systemd_scope_arguments(limits: Limits, unit: str) -> list[str]:
    """``systemd-run``'s arguments that run a command in a scope of its own with ``limits``."""
    return [
        "--scope", "--quiet", "--collect", f"--unit={unit}", "-p", f"MemoryMax={limits.memory_bytes}",
        "-p", "MemorySwapMax=0", "-p", f"TasksMax={limits.processes}", "--",
    ]  # fmt: skip


def _may_make_children(folder: Path) -> bool:
    probe = folder / f"grader-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


# Where a container's memory limit is read: cgroup v2, then v1. A v1 "no limit" is a huge number.
MEMORY_LIMIT_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def machine_memory_bytes() -> int:
    """The memory this machine gives the grader: its RAM, or less where a container's limit
    says so (an autograder platform's 768 MB)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in MEMORY_LIMIT_FILES:
        try:
            limit = path.read_text().strip()
        except OSError:
            continue
        if limit.isdigit():
            memory = min(memory, int(limit))
    return memory


def machine_oom_kills() -> int | None:
    """How many processes the kernel's out-of-memory killer has killed on this machine since it
    started (any cgroup's limit included), or None where Linux does not say."""
    try:
        lines = Path("/proc/vmstat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(" ")
        if name == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None
