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
- cgroup v1 memory and pids groups, so running out of memory is recognised and one notebook's
  processes count against it alone;
- a size-capped tmpfs under the folders the kernel writes to on the host, so a notebook
  cannot fill the grader's disk (without it, a watchdog stops a kernel that writes too much).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

# The layers, as warnings and results name them.
BUBBLEWRAP = "bubblewrap (no network, read-only system, private scratch)"
UID_CHANGE = "a change to an unprivileged uid"
RLIMITS = "rlimits (prlimit)"
MEMORY_CGROUP = "a memory cgroup"
PIDS_CGROUP = "a pids cgroup"
WRITE_CAP = "a size-capped tmpfs for what the notebook writes"
LAYERS = (BUBBLEWRAP, UID_CHANGE, RLIMITS, MEMORY_CGROUP, PIDS_CGROUP, WRITE_CAP)


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
    memory_cgroup: Path | None
    pids_cgroup: Path | None
    write_cap: bool = False
    reasons: dict[str, str] = field(default_factory=dict)

    def missing(self) -> list[str]:
        present = {
            BUBBLEWRAP: self.bubblewrap is not None,
            UID_CHANGE: self.uid_change,
            RLIMITS: self.rlimits,
            MEMORY_CGROUP: self.memory_cgroup is not None,
            PIDS_CGROUP: self.pids_cgroup is not None,
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


def failure(command: list[str], timeout: float = 20) -> str | None:
    """Why ``command`` failed (the last line it printed), or None when it succeeded."""
    try:
        completed = subprocess.run(command, capture_output=True, timeout=timeout, text=True)
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


def own_cgroup(controller: str) -> Path | None:
    """This process's cgroup v1 folder for ``controller``, if we may create children in it."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            folder = Path("/sys/fs/cgroup") / controller / path.lstrip("/")
            probe = folder / f"grader-probe-{uuid.uuid4().hex[:8]}"
            try:
                probe.mkdir()
                probe.rmdir()
            except OSError:
                return None
            return folder
    return None


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
