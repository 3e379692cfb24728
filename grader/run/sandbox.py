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
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
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


# The layers, as warnings and results name them.
BUBBLEWRAP = "bubblewrap (no network, read-only system, private scratch)"
UID_CHANGE = "a change to an unprivileged uid"
RLIMITS = "rlimits (prlimit)"
MEMORY_CGROUP = "a memory cgroup"
PIDS_CGROUP = "a pids cgroup"
LAYERS = (BUBBLEWRAP, UID_CHANGE, RLIMITS, MEMORY_CGROUP, PIDS_CGROUP)


@dataclass(frozen=True)
class Isolation:
    """The isolation layers this machine offers, and why each missing one is missing."""

    bubblewrap: str | None
    uid_change: bool
    rlimits: bool
    memory_cgroup: Path | None
    pids_cgroup: Path | None
    reasons: dict[str, str] = field(default_factory=dict)

    def missing(self) -> list[str]:
        present = {
            BUBBLEWRAP: self.bubblewrap is not None,
            UID_CHANGE: self.uid_change,
            RLIMITS: self.rlimits,
            MEMORY_CGROUP: self.memory_cgroup is not None,
            PIDS_CGROUP: self.pids_cgroup is not None,
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


def probe_isolation() -> Isolation:
    """Find out which layers work here, by trying each, once before a batch starts."""
    reasons: dict[str, str] = {}
    bubblewrap = shutil.which("bwrap")
    if bubblewrap is None:
        reasons[BUBBLEWRAP] = "bwrap is not installed (Debian: apt-get install bubblewrap)"
    else:
        refused = _failure([bubblewrap, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"])
        if refused:
            bubblewrap, reasons[BUBBLEWRAP] = None, f"bwrap cannot create its namespaces here ({refused})"
    rlimits = shutil.which("prlimit") is not None
    if not rlimits:
        reasons[RLIMITS] = "prlimit (util-linux) is not installed"
    cgroups = {}
    for layer, controller in ((MEMORY_CGROUP, "memory"), (PIDS_CGROUP, "pids")):
        cgroups[controller] = _own_cgroup(controller)
        if cgroups[controller] is None:
            reasons[layer] = f"no cgroup v1 {controller} hierarchy in which this process may create groups"
    isolation = Isolation(bubblewrap, True, rlimits, cgroups["memory"], cgroups["pids"])
    # An unprivileged grader has nothing to drop; as root, the kernel becomes nobody if nobody can run it.
    if os.geteuid() == 0:
        refused = (
            "setpriv (util-linux) is not installed" if shutil.which("setpriv") is None else _nobody_failure(isolation)
        )
        if refused:
            reasons[UID_CHANGE] = refused
            isolation = replace(isolation, uid_change=False)
    return replace(isolation, reasons=reasons)


def _nobody_failure(isolation: Isolation) -> str | None:
    """Why uid nobody cannot start the grader's kernel in this sandbox, or None if it can (say,
    the Python installation lies under a folder only root may read)."""
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as scratch:
        folder = Path(scratch)
        placeholder = folder / "placeholder"
        placeholder.write_bytes(b"")
        sandbox = Sandbox(isolation, Limits(), folder, placeholder, placeholder, cpu_seconds=60)
        sandbox.notebook.write_bytes(b"")
        failure = _failure(sandbox.wrapped([sys.executable, "-c", NOBODY_PROBE]), timeout=120)
    return f"uid {NOBODY} cannot run the grader's Python here ({failure})" if failure else None


# What the kernel needs to start: the interpreter, ipykernel, the instrumentation and Keras.
NOBODY_PROBE = (
    "import importlib.util, ipykernel.kernelapp, grader.kernel; "
    "missing = [m for m in ('keras',) if importlib.util.find_spec(m) is None]; "
    "assert not missing, f'cannot import {missing}'"
)


def _failure(command: list[str], timeout: float = 20) -> str | None:
    """Why ``command`` failed (the last line it printed), or None when it succeeded."""
    try:
        completed = subprocess.run(command, capture_output=True, timeout=timeout, text=True)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if completed.returncode == 0:
        return None
    lines = (completed.stderr or completed.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {completed.returncode}"


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
        kernel = self.wrapped([sys.executable, "-m", "ipykernel_launcher", "-f", connection_file])
        # The wrapper joins the cgroups and lets the sandboxed kernel read its connection file,
        # then becomes the sandbox: everything it starts inherits both.
        joins = "".join(f'echo $$ > "{group}/cgroup.procs" && ' for group in self.cgroups)
        return ["sh", "-c", f'{joins}chmod 0644 "{connection_file}" && exec "$@"', "sandbox", *kernel]

    def wrapped(self, command: list[str]) -> list[str]:
        """``command`` inside every layer but the cgroups: bubblewrap, the uid change, the rlimits."""
        if self.isolation.rlimits:
            command = [
                "prlimit",
                f"--cpu={self.cpu_seconds}",
                f"--fsize={self.limits.file_bytes}",
                f"--nofile={self.limits.open_files}",
                f"--nproc={self.limits.processes}",
                "--core=0",
                "--",
                *command,
            ]
        if os.geteuid() == 0 and self.isolation.uid_change:
            command = [
                "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--", *command,
            ]  # fmt: skip
        if self.isolation.bubblewrap:
            command = [self.isolation.bubblewrap, *self._bubblewrap_arguments(), "--", *command]
        return command

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
