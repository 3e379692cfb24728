"""Isolation of a notebook's kernel: what this machine offers, and the command
that starts a kernel inside it.

Layers, each probed once per run and used when present:
- bubblewrap: no network (a private loopback only), a read-only view of the
  system and the Python installation and nothing else of the host, a private
  size-capped ``/tmp``, every process killed with the sandbox;
- a real uid change to ``nobody`` when the grader runs as root (setpriv);
- rlimits (prlimit): CPU time, file size, open files, processes, no core dumps;
- cgroup v1 memory and pids groups, so running out of memory is recognised.

The kernel talks to the grader over Unix sockets (ZMQ's ipc transport) in a
folder shared with the sandbox, since its loopback is not the grader's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

NOBODY = 65534
INSIDE_DATA = "/grader/data.npz"
INSIDE_FACTS = "/grader/facts"
INSIDE_WORKDIR = "/tmp/work"
INSIDE_REFERENCE = "/grader/reference"
# The grader package, which the kernel imports its instrumentation from.
GRADER_PACKAGE = Path(__file__).resolve().parents[1]
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/opt")


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 8 * 2**30
    processes: int = 4096  # threads count: TensorFlow starts dozens
    file_bytes: int = 2 * 2**30
    scratch_bytes: int = 2 * 2**30
    open_files: int = 4096


@dataclass(frozen=True)
class Isolation:
    """The isolation layers this machine offers."""

    bubblewrap: str | None
    uid_change: bool
    rlimits: bool
    memory_cgroup: Path | None
    pids_cgroup: Path | None

    def missing(self) -> list[str]:
        wanted = {
            "bubblewrap (no network, read-only system, private scratch)": self.bubblewrap is not None,
            "a change to an unprivileged uid": self.uid_change,
            "rlimits (prlimit)": self.rlimits,
            "a memory cgroup": self.memory_cgroup is not None,
            "a pids cgroup": self.pids_cgroup is not None,
        }
        return [name for name, present in wanted.items() if not present]

    @property
    def level(self) -> str:
        missing = self.missing()
        return "full" if not missing else "none" if len(missing) == 5 else "partial"

    def describe(self) -> str:
        missing = self.missing()
        return self.level + (f" (missing: {', '.join(missing)})" if missing else "")


def probe_isolation() -> Isolation:
    """Find out which layers work here, by trying each."""
    bubblewrap = shutil.which("bwrap")
    if bubblewrap and _fails([bubblewrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"]):
        bubblewrap = None
    return Isolation(
        bubblewrap=bubblewrap,
        # An unprivileged grader has nothing to drop.
        uid_change=os.geteuid() != 0 or shutil.which("setpriv") is not None,
        rlimits=shutil.which("prlimit") is not None,
        memory_cgroup=_own_cgroup("memory"),
        pids_cgroup=_own_cgroup("pids"),
    )


def _fails(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=20).returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        return True


def _own_cgroup(controller: str) -> Path | None:
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


class Sandbox:
    """One kernel's sandbox: its folders, its cgroups and the command that starts it."""

    def __init__(
        self, isolation: Isolation, limits: Limits, scratch: Path, data_path: Path, spec_path: Path, cpu_seconds: int
    ) -> None:
        self.isolation = isolation
        self.limits = limits
        self.data_path = data_path
        self.spec_path = spec_path
        self.cpu_seconds = cpu_seconds
        self.notebook = scratch / "submission.ipynb"
        self.facts_dir = scratch / "facts"
        self.ipc_dir = scratch / "ipc"
        self.workdir = scratch / "work"  # used when there is no bubblewrap
        for folder in (self.facts_dir, self.ipc_dir, self.workdir):
            folder.mkdir()
            if os.geteuid() == 0 and isolation.uid_change:
                os.chown(folder, NOBODY, NOBODY)
        scratch.chmod(0o755)
        self.cgroups = [
            base / f"grader-{uuid.uuid4().hex[:12]}"
            for base in (isolation.memory_cgroup, isolation.pids_cgroup)
            if base
        ]

    # Paths as the notebook sees them
    @property
    def inside_facts(self) -> str:
        return INSIDE_FACTS if self.isolation.bubblewrap else str(self.facts_dir)

    @property
    def inside_data(self) -> str:
        return INSIDE_DATA if self.isolation.bubblewrap else str(self.data_path)

    @property
    def inside_spec(self) -> str:
        """Where ``grader.check`` finds the spec (as ``GRADER_SPEC``) inside the sandbox."""
        return f"{INSIDE_REFERENCE}/{self.spec_path.name}" if self.isolation.bubblewrap else str(self.spec_path)

    def kernel_command(self, connection_file: str) -> list[str]:
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]
        if self.isolation.rlimits:
            kernel = [
                "prlimit",
                f"--cpu={self.cpu_seconds}",
                f"--fsize={self.limits.file_bytes}",
                f"--nofile={self.limits.open_files}",
                f"--nproc={self.limits.processes}",
                "--core=0",
                "--",
                *kernel,
            ]
        if os.geteuid() == 0 and self.isolation.uid_change:
            kernel = [
                "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--", *kernel,
            ]  # fmt: skip
        if self.isolation.bubblewrap:
            kernel = [self.isolation.bubblewrap, *self._bubblewrap_arguments(), "--", *kernel]
        # The wrapper joins the cgroups and lets the sandboxed kernel read its connection file,
        # then becomes the sandbox: everything it starts inherits both.
        joins = "".join(f'echo $$ > "{group}/cgroup.procs" && ' for group in self.cgroups)
        return ["sh", "-c", f'{joins}chmod 0644 "{connection_file}" && exec "$@"', "sandbox", *kernel]

    def _bubblewrap_arguments(self) -> list[str]:
        arguments = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                     "--new-session", "--proc", "/proc", "--dev", "/dev", "--ro-bind", "/sys", "/sys"]  # fmt: skip
        for folder in SYSTEM_DIRS:
            path = Path(folder)
            if path.is_symlink():
                arguments += ["--symlink", os.readlink(path), folder]
            elif path.is_dir():
                arguments += ["--ro-bind", folder, folder]
        # /tmp first: the grader's own scratch may lie below it and is bound in afterwards.
        arguments += ["--size", str(self.limits.scratch_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
        arguments += ["--perms", "0777", "--dir", INSIDE_WORKDIR]
        made: set[str] = {"/tmp"}
        python_trees = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(GRADER_PACKAGE)}
        for tree in sorted(python_trees):
            arguments += [*_parents(tree, made), "--ro-bind", tree, tree]
        for device in sorted(Path("/dev").glob("nvidia*")):
            arguments += ["--dev-bind", str(device), str(device)]
        arguments += [*_parents(str(self.ipc_dir), made), "--bind", str(self.ipc_dir), str(self.ipc_dir)]
        arguments += ["--dir", "/grader", "--ro-bind", str(self.data_path), INSIDE_DATA]
        arguments += ["--bind", str(self.facts_dir), INSIDE_FACTS]
        arguments += ["--ro-bind", str(self.spec_path.parent), INSIDE_REFERENCE]
        arguments += ["--ro-bind", str(self.notebook), f"{INSIDE_WORKDIR}/submission.ipynb", "--chdir", INSIDE_WORKDIR]
        environment = self.kernel_environment()
        arguments += ["--clearenv", *(item for name in environment for item in ("--setenv", name, environment[name]))]
        return arguments

    def kernel_environment(self) -> dict[str, str]:
        """The variables the kernel runs with. In bubblewrap they are all it gets; without it they
        are added to the grader's own."""
        variables = {
            # TensorFlow's C++ start-up chatter is noise in a student's report.
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
            "GRADER_SPEC": self.inside_spec,
        }
        if not self.isolation.bubblewrap:
            return {**os.environ, **variables}
        variables |= {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
            "IPYTHONDIR": "/tmp/ipython",
            "MPLCONFIGDIR": "/tmp/matplotlib",
        }
        gpu_settings = ("CUDA_VISIBLE_DEVICES", "TF_FORCE_GPU_ALLOW_GROWTH")
        return variables | {name: os.environ[name] for name in gpu_settings if name in os.environ}

    def __enter__(self) -> Sandbox:
        for group in self.cgroups:
            group.mkdir()
            limit = self.limits.memory_bytes if "memory" in group.parts else self.limits.processes
            (group / ("memory.limit_in_bytes" if "memory" in group.parts else "pids.max")).write_text(str(limit))
        return self

    def out_of_memory(self) -> bool:
        """Whether the memory cgroup killed a process of this sandbox."""
        for group in self.cgroups:
            control = group / "memory.oom_control"
            if control.exists():
                fields = dict(line.split() for line in control.read_text().splitlines() if " " in line)
                if int(fields.get("oom_kill", "0")) > 0:
                    return True
        return False

    def __exit__(self, *exc: object) -> None:
        for group in self.cgroups:
            _kill_and_remove(group)


def _parents(path: str, made: set[str]) -> list[str]:
    """``--dir`` arguments that create the missing parents of ``path`` readable by all."""
    arguments: list[str] = []
    for parent in reversed(Path(path).parents):
        name = str(parent)
        if name != "/" and name not in made and not any(name == d or name.startswith(d + "/") for d in SYSTEM_DIRS):
            made.add(name)
            arguments += ["--perms", "0755", "--dir", name]
    return arguments


def _kill_and_remove(group: Path) -> None:
    """Kill what is left in a cgroup (orphans included), then remove it."""
    procs = group / "cgroup.procs"
    for _ in range(50):
        try:
            pids = [int(pid) for pid in procs.read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    try:
        group.rmdir()
    except OSError:
        pass
