"""One kernel's sandbox: its folders on the host, the command that starts a kernel inside
every isolation layer this machine offers (``grader.run.isolation``), and its cgroups.

The kernel talks to the grader over Unix sockets (ZMQ's ipc transport) in a folder shared
with the sandbox, since its loopback is not the grader's. What it may write on the host (that
folder, the facts folder the instrumentation exports to, its working folder without
bubblewrap) lies on a tmpfs of ``Limits.write_bytes`` where one can be mounted.

A ``Sandbox`` is a context manager for its folders (``with Sandbox(...) as sandbox``: they
stay readable until the block ends, for the facts to be read and the models evaluated);
``confined()`` is one for the kernel's cgroups, which kill every process left when it ends
(and every process of the sandbox's own uid). Without bubblewrap a reaper (``REAPER``) ends
every process the kernel started, orphans included, with it; and bubblewrap or not, the
kernel gets only the variables ``process_environment`` names, never the grader's own.

A grader killed outright (SIGKILL, a lost machine) cleans nothing up, and a kernel it was
starting can outlive it: bubblewrap runs in a session of its own and may not yet have tied
itself to its parent. Each sandbox's folder therefore names its owner (``owner.json``), and
``sweep_stale_sandboxes`` removes those whose owner is gone, their processes, cgroups and
tmpfs included, before the next batch starts.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grader.protocol.files import write_atomically
from grader.run.isolation import Isolation, Limits, failure, systemd_scope_arguments

INSIDE_DATA = "/grader/data.npz"
INSIDE_FACTS = "/grader/facts"
INSIDE_WORKDIR = "/tmp/work"
INSIDE_REFERENCE = "/grader/reference"
INSIDE_INBOX = "/grader/inbox"
# The grader package, which the kernel imports its instrumentation from.
GRADER_PACKAGE = Path(__file__).resolve().parents[1]
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/opt")
# Each sandbox runs as a uid of its own from this range, owned by no account: a per-user limit
# (processes, threads) is then a per-sandbox limit, and no two sandboxes share their files.
SANDBOX_UIDS = range(2**20, 2**20 + 2**24)
# In each sandbox's folder: the process that made it, its uid, its cgroups and its kernel.
OWNER_FILE = "owner.json"
# How ``Sandbox`` names its cgroups
CGROUP_NAME = re.compile(r"grader-[0-9a-f]{12}")
# Held while a sandbox chooses its uid, in the temporary folder: no two live sandboxes share one.
UID_LOCK = "grader-uids.lock"
# Ranges this small are searched uid by uid; larger ones by random draws
SCANNED_UIDS = 4096
# The sandbox's PATH, with bubblewrap or without: the system's folders, never the grader's own PATH
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# The launcher that stands for bubblewrap's pid namespace where there is none (a script, never imported)
REAPER = Path(__file__).with_name("reaper.py")
# A forked kernel's process as jupyter_client sees it (a script, never imported), and what holds
# its sandbox open: it says when the sandbox is built, then waits for its input to close.
RELAY = Path(__file__).with_name("relay.py")
HOLDER = ["/bin/sh", "-c", "echo built && exec cat > /dev/null"]


class NoFreeUid(OSError):
    """Every uid of the range is taken by a live sandbox."""


class Sandbox:
    def __init__(
        self,
        isolation: Isolation,
        limits: Limits,
        scratch: Path,
        data_path: Path,
        reference_files: list[Path],
        cpu_seconds: int,
        environment: dict[str, str] | None = None,
        data_name: str | None = None,
    ) -> None:
        """``reference_files`` are what ``grader.check`` needs inside (the spec and its
        calibration): bound one by one, never their folder, which holds the solution.
        ``environment``: variables the kernel needs besides its own (the Keras backend's).
        ``data_name``: the data file is also placed, read-only, in the notebook's folder under
        this name, for notebooks that open it by a relative path."""
        self.isolation = isolation
        self.data_name = data_name
        self.environment = environment or {}
        self.limits = limits
        self.data_path = data_path
        self.reference_files = reference_files
        self.cpu_seconds = cpu_seconds
        self.uid = 0  # chosen when the sandbox is made, among the uids no live sandbox holds
        self.scratch = scratch
        self._owner: dict[str, object] = {}  # what owner.json says, from ``__enter__`` on
        self.notebook = scratch / "submission.ipynb"
        self.writable = scratch / "writable"
        self.facts_dir = self.writable / "facts"
        self.ipc_dir = self.writable / "ipc"
        self.workdir = self.writable / "work"  # used when there is no bubblewrap
        self.kernel_log = scratch / "kernel.log"
        # A forked kernel's: what its relay asks the zygote for, and what it was told of the kernel
        self.fork_request = scratch / "fork-request.json"
        self.forked_kernel_state = scratch / "forked-kernel.json"
        name = f"grader-{uuid.uuid4().hex[:12]}"
        bases = (isolation.memory_cgroup, isolation.pids_cgroup, isolation.cgroup_v2)
        self.cgroups = [base / name for base in bases if base]
        # The systemd scope it runs in, where systemd-run gives the limits
        self.scope = name if isolation.cgroups == "systemd" else None
        # Set by a watchdog that stopped the sandbox for holding more memory than its limit
        self.memory_exceeded = threading.Event()

    @property
    def changes_uid(self) -> bool:
        return os.geteuid() == 0 and self.isolation.uid_change

    def __enter__(self) -> Sandbox:
        # Written first: whatever is made next can be found by a sweep if this process dies.
        with _uid_lock(self.scratch.parent):
            if self.changes_uid:
                self.uid = _free_uid(self.scratch.parent)
            self._owner = {
                **this_process(),
                "uid": self.uid if self.changes_uid else None,
                "cgroups": [str(group) for group in self.cgroups],
                "kernel": None,
            }
            self._write_owner()
        self.writable.mkdir()
        if self.isolation.write_cap:
            refused = failure(
                ["mount", "-t", "tmpfs", "-o", f"size={self.limits.write_bytes},mode=0755", "tmpfs", str(self.writable)]
            )
            if refused:
                raise OSError(f"cannot mount the sandbox's tmpfs: {refused}")
        for folder in self._folders():
            folder.mkdir()
            if self.changes_uid:
                os.chown(folder, self.uid, self.uid)
        if self.data_name and not self.isolation.bubblewrap:  # bubblewrap binds the file in read-only
            # A copy outside what the notebook may write (its write limit counts none of it), named
            # in its folder by a link: whatever the notebook does there, the grader's file stays.
            served = self.scratch / "served"
            served.mkdir(mode=0o755)  # the grader's: a sandbox of another uid cannot write in it
            shutil.copyfile(self.data_path, served / self.data_name)
            (served / self.data_name).chmod(0o444)
            (self.workdir / self.data_name).symlink_to(served / self.data_name)
        self.writable.parent.chmod(0o755)
        return self

    def _folders(self) -> list[Path]:
        """The folders made under ``writable``, owned by the sandbox's uid."""
        return [self.facts_dir, self.ipc_dir, self.workdir]

    def record_kernel(self, pid: int) -> None:
        """Name the kernel's process (its launcher, which becomes bubblewrap) in the owner file,
        as soon as it is started: without root there is no uid or cgroup to find it by."""
        self._owner["kernel"] = {"pid": pid, "started": process_start(pid)}
        self._write_owner()

    def _write_owner(self) -> None:
        write_atomically(self.scratch / OWNER_FILE, json.dumps(self._owner))
        (self.scratch / OWNER_FILE).chmod(0o644)  # whatever the umask: the sweep trusts no file others may write

    def __exit__(self, *exc: object) -> None:
        unmounted(self.writable)

    def written_bytes(self, limit_entries: int = 100_000) -> int:
        """What the kernel has written where the grader reads; past ``limit_entries`` files, a
        number past every limit (so many files are themselves too much)."""
        total = 0
        entries = 0
        for folder, _, files in os.walk(self.writable):
            for name in files:
                entries += 1
                if entries > limit_entries:
                    return 2**62
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    continue
        return total

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
        spec = self.reference_files[0]
        return f"{INSIDE_REFERENCE}/{spec.name}" if self.isolation.bubblewrap else str(spec)

    def kernel_command(self, connection_file: str) -> list[str]:
        # The sandboxed kernel reads its connection file as the sandbox's uid.
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]
        return self.command(kernel, before=f'chmod 0644 "{connection_file}"')

    def command(self, command: list[str], before: str = "") -> list[str]:
        """``command`` inside every layer: a wrapper joins the cgroups (and runs ``before``), then
        becomes the sandbox, so that everything it starts inherits them. Without bubblewrap the
        sandbox is the reaper (``REAPER``), whose descendants, orphans included, all end with it."""
        wrapped = self.wrapped(command)
        if not self.isolation.bubblewrap:
            # As the grader's uid, past the uid change: a notebook's processes cannot signal it then.
            wrapped = [sys.executable, "-I", "-S", str(REAPER), str(os.getpid()), *wrapped]
        if self.scope is not None and self.isolation.systemd_run:
            wrapped = [self.isolation.systemd_run, *systemd_scope_arguments(self.limits, self.scope), *wrapped]
        return self._in_cgroups(wrapped, before)

    def forked_kernel_command(self, connection_file: str, zygote_socket: Path) -> list[str]:
        """The kernel's command when a zygote forks it (``grader.run.zygote``): the relay, in the
        cgroups, builds this sandbox around a holder, and the zygote's child enters it and gives
        the kernel the uid, rlimits and variables ``wrapped`` would have given it."""
        request = {
            "cgroups": [str(group) for group in self.cgroups],
            "rlimits": self._rlimits() if self.isolation.rlimits else {},
            "uid": self.uid if self.changes_uid else None,
            "environment": self.process_environment(),
            "workdir": INSIDE_WORKDIR,
            "connection_file": connection_file,
        }
        write_atomically(self.fork_request, json.dumps(request))
        relay = [sys.executable, "-I", "-S", str(RELAY), str(os.getpid()), str(zygote_socket), str(self.fork_request)]
        # The holder keeps bubblewrap's own uid: the notebook's uid cannot end its sandbox by it
        holder = [str(self.isolation.bubblewrap), *self._bubblewrap_arguments(), "--", *HOLDER]
        relay += [str(self.forked_kernel_state), *holder]
        return self._in_cgroups(relay, before=f'chmod 0644 "{connection_file}"')

    def forked_kernel_pid(self) -> int | None:
        """The pid of the forked kernel's keeper (its parent in the sandbox, so the kernel and all
        it starts are its descendants), once the relay has it, while that process runs."""
        state = self._forked_state()
        pid = state.get("pid")
        return pid if isinstance(pid, int) and process_start(pid) == state.get("started") else None

    def forked_kernel_lost(self) -> str | None:
        """Why a forked kernel ended through no doing of its own (the zygote's child that held it
        ended first), if it did."""
        lost = self._forked_state().get("lost")
        return str(lost) if lost else None

    def _forked_state(self) -> dict[str, Any]:
        try:  # written by the relay, in the sandbox's folder that only the grader may write to
            state = json.loads(self.forked_kernel_state.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _in_cgroups(self, command: list[str], before: str) -> list[str]:
        steps = [*(f'echo $$ > "{group}/cgroup.procs"' for group in self.cgroups), *([before] if before else [])]
        return ["sh", "-c", " && ".join([*steps, 'exec "$@"']), "sandbox", *command]

    def _rlimits(self) -> dict[str, int]:
        """The rlimits every process of the sandbox runs under, by ``prlimit``'s names."""
        return {
            "cpu": self.cpu_seconds, "fsize": self.limits.file_bytes, "nofile": self.limits.open_files,
            "nproc": self.limits.processes, "core": 0,
        }  # fmt: skip

    def wrapped(self, command: list[str]) -> list[str]:
        """``command`` inside every layer but the cgroups: bubblewrap, the uid change, the rlimits."""
        if self.isolation.rlimits:
            command = ["prlimit", *(f"--{name}={limit}" for name, limit in self._rlimits().items()), "--", *command]
        if self.changes_uid:
            command = [
                "setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
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
        python_trees = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(GRADER_PACKAGE), *_python_path()}
        for tree in sorted(python_trees):
            arguments += [*_parents(tree, made), "--ro-bind", tree, tree]
        for device in sorted(Path("/dev").glob("nvidia*")):
            arguments += ["--dev-bind", str(device), str(device)]
        arguments += ["--dir", "/grader", "--ro-bind", str(self.data_path), INSIDE_DATA]
        arguments += self._role_arguments(made)
        environment = self.process_environment()
        arguments += ["--clearenv", *(item for name in environment for item in ("--setenv", name, environment[name]))]
        return arguments

    def _role_arguments(self, made: set[str]) -> list[str]:
        """What a kernel sees besides the system and the data set: its sockets, its facts
        folder, the spec, its notebook."""
        arguments = [*_parents(str(self.ipc_dir), made), "--bind", str(self.ipc_dir), str(self.ipc_dir)]
        arguments += ["--bind", str(self.facts_dir), INSIDE_FACTS, "--dir", INSIDE_REFERENCE]
        for reference in self.reference_files:
            arguments += ["--ro-bind", str(reference), f"{INSIDE_REFERENCE}/{reference.name}"]
        arguments += ["--ro-bind", str(self.notebook), f"{INSIDE_WORKDIR}/submission.ipynb", "--chdir", INSIDE_WORKDIR]
        if self.data_name:
            arguments += ["--ro-bind", str(self.data_path), f"{INSIDE_WORKDIR}/{self.data_name}"]
        return arguments

    def process_environment(self) -> dict[str, str]:
        """All the variables the sandbox's processes run with, bubblewrap or not: nothing else of
        the grader's environment (its tokens, its cloud keys) reaches the notebook. Without
        bubblewrap only the home (the sandbox's own folder) and the paths inside differ."""
        home = "/tmp" if self.isolation.bubblewrap else str(self.workdir)
        return kernel_variables(home) | self._role_variables() | self.environment

    def _role_variables(self) -> dict[str, str]:
        """What a kernel needs besides: where ``grader.check`` finds the spec."""
        return {"GRADER_SPEC": self.inside_spec}

    @contextmanager
    def confined(self) -> Iterator[Sandbox]:
        """The kernel's cgroups, for as long as it runs; every process left in them, or running
        as the sandbox's own uid, is killed after."""
        try:
            for group in self.cgroups:
                group.mkdir()
                for name, limit in self._cgroup_limits(group).items():
                    if name != "memory.swap.max" or (group / name).exists():  # without swap accounting: none
                        (group / name).write_text(str(limit))
            yield self
        finally:
            for group in self.cgroups:
                _kill_and_remove(group)
            # No other process has this uid (``_free_uid``): whatever escaped the reaper ends here.
            if self.changes_uid and self.uid in SANDBOX_UIDS:
                _kill_until_gone(functools.partial(_pids_of_uid, self.uid))

    def _cgroup_limits(self, group: Path) -> dict[str, int]:
        if self.isolation.cgroups == "v2":
            return {"memory.max": self.limits.memory_bytes, "memory.swap.max": 0, "pids.max": self.limits.processes}
        if "memory" in group.parts:
            return {"memory.limit_in_bytes": self.limits.memory_bytes}
        return {"pids.max": self.limits.processes}

    def out_of_memory(self) -> bool:
        """Whether a process of this sandbox was killed for its memory: by its memory cgroup
        (v1 or v2) or by the watchdog that stands in for one."""
        if self.memory_exceeded.is_set():
            return True
        for group in self.cgroups:
            for name in ("memory.oom_control", "memory.events"):  # cgroup v1, v2
                try:
                    text = (group / name).read_text()
                except OSError:
                    continue
                fields = dict(line.split(None, 1) for line in text.splitlines() if " " in line)
                if int(fields.get("oom_kill", "0").strip() or 0) > 0:
                    return True
        return False


class EvaluatorSandbox(Sandbox):
    """The evaluator's sandbox: it sees the system, the Python installation, the data set and
    an inbox of the files it is to measure (written by the grader, read-only inside), and
    nothing it writes reaches the host."""

    def __init__(
        self, isolation: Isolation, limits: Limits, scratch: Path, data_path: Path, cpu_seconds: int,
        environment: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(isolation, limits, scratch, data_path, [], cpu_seconds, environment)
        self.inbox = self.writable / "inbox"

    def _folders(self) -> list[Path]:
        return [self.workdir]  # the inbox is the grader's, made by it

    def __enter__(self) -> EvaluatorSandbox:
        super().__enter__()
        self.inbox.mkdir(mode=0o755)
        return self

    @property
    def inside_inbox(self) -> str:
        return INSIDE_INBOX if self.isolation.bubblewrap else str(self.inbox)

    def _role_arguments(self, made: set[str]) -> list[str]:
        return ["--ro-bind", str(self.inbox), INSIDE_INBOX, "--chdir", "/tmp"]

    def _role_variables(self) -> dict[str, str]:
        return {}


def kernel_variables(home: str) -> dict[str, str]:
    """The variables every sandboxed process runs with, with ``home`` as its home (a zygote's
    too: what it imported saw nothing more of the grader's)."""
    variables = {
        # TensorFlow's C++ start-up chatter is noise in a student's report.
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
        "HOME": home,
        "JUPYTER_RUNTIME_DIR": f"{home}/jupyter",
        "IPYTHONDIR": f"{home}/ipython",
        "MPLCONFIGDIR": f"{home}/matplotlib",
        "KERAS_HOME": f"{home}/keras",
        # Python is started by its full path (sys.executable); the wrappers live in these folders.
        "PATH": SANDBOX_PATH,
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    # Packages installed beside Python (pip install --target) and the worker's GPU
    passed = ("PYTHONPATH", "CUDA_VISIBLE_DEVICES")
    return variables | {name: os.environ[name] for name in passed if name in os.environ}


def _free_uid(folder: Path) -> int:
    """A uid of ``SANDBOX_UIDS`` that no live sandbox under ``folder`` holds and no process runs as."""
    taken = set()
    for owner_file in folder.glob(f"grader-*/{OWNER_FILE}"):
        try:
            owner = json.loads(owner_file.read_text())
            if isinstance(owner.get("uid"), int) and not _owner_gone(owner):
                taken.add(owner["uid"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    if len(SANDBOX_UIDS) <= SCANNED_UIDS:  # a small range: each uid, in a random order
        candidates = sorted(SANDBOX_UIDS, key=lambda _: secrets.randbits(32))
    else:
        candidates = [SANDBOX_UIDS[secrets.randbelow(len(SANDBOX_UIDS))] for _ in range(100)]
    for uid in candidates:
        if uid not in taken and not _pids_of_uid(uid):
            return uid
    raise NoFreeUid(f"every sandbox uid ({SANDBOX_UIDS.start} to {SANDBOX_UIDS.stop - 1}) is held by a live sandbox")


@contextmanager
def _uid_lock(folder: Path) -> Iterator[None]:
    """Held while a sandbox chooses its uid and names it in its owner file; where the lock file
    cannot be had (a link someone planted), the choice goes on without it."""
    try:
        descriptor = os.open(folder / UID_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        yield
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def sweep_stale_sandboxes(folder: Path | None = None) -> list[Path]:
    """Remove the sandboxes under ``folder`` (the temporary folder) whose grader process is gone:
    kill their kernel and the processes of their uid and cgroups, unmount their tmpfs, delete
    their folder.
    Returns the folders removed. Only folders of this user that no one else may write to count,
    in a folder where no one else may rename them, since their ``owner.json`` says what to kill.
    A sandbox it cannot clean up now (its tmpfs stays mounted) is left for a later sweep."""
    parent = folder or Path(tempfile.gettempdir())
    try:
        mode = parent.stat().st_mode
    except OSError:
        return []
    if mode & 0o022 and not mode & stat.S_ISVTX:
        return []
    swept = []
    for owner_file in sorted(parent.glob(f"grader-*/{OWNER_FILE}")):
        scratch = owner_file.parent
        try:
            if not (_private(scratch, stat.S_ISDIR) and _private(owner_file, stat.S_ISREG)):
                continue
            owner = json.loads(owner_file.read_text())
            if not _owner_gone(owner):
                continue
            uid, cgroups, kernel = owner["uid"], [str(group) for group in owner["cgroups"]], owner.get("kernel")
            if isinstance(kernel, dict):
                _kill_until_gone(functools.partial(_if_started, int(kernel["pid"]), kernel["started"]))
            if isinstance(uid, int) and uid in SANDBOX_UIDS:
                _kill_until_gone(functools.partial(_pids_of_uid, uid))
            for group in map(Path, cgroups):
                if _is_sandbox_cgroup(group):
                    _kill_and_remove(group)
            if not unmounted(scratch / "writable"):
                continue
            shutil.rmtree(scratch)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a sweep only tidies up: nothing it meets may stop a grading
        swept.append(scratch)
    return swept


def unmounted(folder: Path) -> bool:
    """Unmount the tmpfs at ``folder``, if one is mounted there; whether none is there now."""
    if os.path.ismount(folder):
        failure(["umount", "--lazy", str(folder)])
    return not os.path.ismount(folder)


def this_process() -> dict[str, str | int | None]:
    """What names this process among every process that made a sandbox: its pid with its start
    (a pid is reused), its pid namespace (another container's pid is not ours to look up) and
    the boot (after a reboot every owner is gone)."""
    pid = os.getpid()
    return {"pid": pid, "started": process_start(pid), "pid_namespace": _pid_namespace(), "boot": _boot_id()}


def _owner_gone(owner: dict[str, Any]) -> bool:
    """Whether the process ``owner`` names has ended; False where this process cannot tell."""
    if owner["boot"] != _boot_id():
        return True
    if owner["pid_namespace"] != _pid_namespace():
        return False
    return bool(process_start(int(owner["pid"])) != owner["started"])


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or None if there is no such
    process or it has ended (a zombie): with its pid, it names a process that may since have
    died and its pid be reused."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The fields after the command's name, which may hold spaces, in parentheses: the 3rd is
    # the state, the 22nd the start.
    fields = text.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def _if_started(pid: int, started: object) -> list[int]:
    """``[pid]`` while that process is the one that started at ``started``, else nothing."""
    return [pid] if pid > 0 and isinstance(started, str) and process_start(pid) == started else []


@functools.cache  # a process keeps its pid namespace
def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


@functools.cache  # one per boot
def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _private(path: Path, is_kind: Callable[[int], bool]) -> bool:
    """Whether ``path`` is of the kind asked (not a link), this user's, and no one else may write to it."""
    status = path.lstat()
    return is_kind(status.st_mode) and status.st_uid == os.geteuid() and not status.st_mode & 0o022


def _is_sandbox_cgroup(group: Path) -> bool:
    """Whether ``group`` is a sandbox's cgroup (``confined``) as a sweep may remove: named so,
    in a cgroup v1 hierarchy, its path plain (no ``..``)."""
    return (
        os.path.normpath(group) == str(group)
        and group.parts[:4] == ("/", "sys", "fs", "cgroup")
        and CGROUP_NAME.fullmatch(group.name) is not None
    )


def _pids_of_uid(uid: int) -> list[int]:
    """The live processes (not zombies) whose real uid is ``uid``."""
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("Uid", "").split()[:1] == [str(uid)] and not fields.get("State", "").strip().startswith("Z"):
            pids.append(int(status.parent.name))
    return pids


def unprivileged_failure(isolation: Isolation) -> str | None:
    """Why a sandbox's own uid cannot start the grader's kernel here, or None if it can (it
    cannot where the Python installation lies under a folder only root may enter)."""
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as folder:
        scratch = Path(folder)
        placeholder = scratch / "placeholder"
        placeholder.write_bytes(b"")
        with Sandbox(isolation, Limits(), scratch, placeholder, [placeholder], cpu_seconds=60) as sandbox:
            sandbox.notebook.write_bytes(b"")
            # In the environment the kernel gets: it must start with nothing more of the grader's
            refused = failure(sandbox.wrapped([sys.executable, "-c", KERNEL_PROBE]), 120, sandbox.process_environment())
    return f"an unprivileged uid cannot run the grader's Python here ({refused})" if refused else None


# What the kernel needs to start: the interpreter, ipykernel, the instrumentation and Keras.
KERNEL_PROBE = (
    "import importlib.util, ipykernel.kernelapp, grader.kernel; "
    "missing = [m for m in ('keras',) if importlib.util.find_spec(m) is None]; "
    "assert not missing, f'cannot import {missing}'"
)


def _python_path() -> list[str]:
    """The folders of ``$PYTHONPATH`` that exist: the kernel imports from them too."""
    return [folder for folder in os.environ.get("PYTHONPATH", "").split(os.pathsep) if folder and Path(folder).is_dir()]


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
    _kill_until_gone(functools.partial(_cgroup_pids, group))
    try:
        group.rmdir()
    except OSError:
        pass


def _cgroup_pids(group: Path) -> list[int]:
    try:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _kill_until_gone(listed: Callable[[], list[int]]) -> None:
    """SIGKILL the processes ``listed`` gives, again until it gives none (they may fork meanwhile),
    for 5 s at most. A pid of 0 (a process of another pid namespace) is never signalled."""
    for _ in range(50):
        pids = [pid for pid in listed() if pid > 0]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
