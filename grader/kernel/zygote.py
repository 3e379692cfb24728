"""The zygote: a process that has imported Keras, its backend, ipykernel and the
instrumentation once, and forks a kernel for each notebook. Run as ``python -m
grader.kernel.zygote SOCKET`` by ``grader.run.zygote``; it runs no student code itself.

Each request comes from a relay (``grader/run/relay.py``) that has already built the kernel's
sandbox with bubblewrap, around a placeholder process (the holder). The zygote forks a child
for it, which joins the sandbox's cgroups, enters the holder's namespaces (its user namespace
where it has one, then IPC, UTS, network, pid and mount) and its root, and forks the kernel
there: the kernel is in the sandbox's pid namespace, sees only the sandbox's files, and is
given its rlimits, its own uid with no capabilities, ``no_new_privs`` and only the sandbox's
variables before ipykernel starts. The child waits for the kernel and reports how it ended.

Fork safety: the zygote runs no operation of the backend, so no backend thread or device
exists when it forks. It refuses to fork when it holds more than one thread (OpenBLAS'
workers, which a first fork shuts down, excepted) or an open device file (``/dev/nvidia*``):
the relay then fails and the host starts kernels as before.

The protocol, one JSON object per line on the Unix socket: the relay sends the request, with
its stdout and stderr (the kernel's log) as SCM_RIGHTS; the child answers ``{"pid": N}`` (the
pid, in the host's pid namespace, of the kernel's keeper: its parent in the sandbox), then
``{"exit": code}`` (128 + n when killed by signal n, as bubblewrap reports it); the zygote
answers ``{"error": why}`` instead when it refuses. On start the zygote prints one line on its
stdout: ``{"ready": true}`` or ``{"ready": false, "refused": why}``.
"""

from __future__ import annotations

import array
import ctypes
import fcntl
import importlib
import json
import os
import resource
import select
import signal
import socket
import sys
from typing import Any

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
# Entered in this order: the user namespace first (it gives the rights to enter the others),
# the mount namespace last (after it, the holder's /proc entries are no longer where they were).
NAMESPACES = (
    ("user", CLONE_NEWUSER), ("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("net", CLONE_NEWNET),
    ("pid", CLONE_NEWPID), ("mnt", CLONE_NEWNS),
)  # fmt: skip
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
# The kernel's standing with the machine's out-of-memory killer: the default, a cold kernel's
OOM_SCORE = "0"
NS_GET_USERNS = 0xB701  # ioctl: the user namespace that owns a namespace
LINUX_CAPABILITY_VERSION_3 = 0x20080522
DEVICE_PREFIXES = ("/dev/nvidia", "/dev/dri", "/dev/kfd", "/dev/accel")
# What a kernel imports that is worth having imported before the fork; the backend comes with
# Keras. Not pyplot: its backend would be set up before the kernel's shell exists, and plots
# would no longer show inline.
WARM_MODULES = (
    "numpy", "keras", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger",
    "IPython", "IPython.core.history", "sqlite3", "grader.kernel",
)  # fmt: skip
# The backend ipykernel gives matplotlib, which reads it when imported: Keras imports matplotlib
# here, before the kernel would have set it.
INLINE_PLOTS = ("MPLBACKEND", "module://matplotlib_inline.backend_inline")
RLIMITS = {
    "cpu": resource.RLIMIT_CPU, "fsize": resource.RLIMIT_FSIZE, "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC, "core": resource.RLIMIT_CORE,
}  # fmt: skip
REQUEST_BYTES = 2**20
# Exit status of a zygote that will not fork (threads, a device): its kernels start cold.
REFUSED = 3
# Seconds a relay has to send its request once connected
REQUEST_SECONDS = 30

_libc = ctypes.CDLL(None, use_errno=True)


def main(socket_path: str) -> int:
    """Import, then fork kernels for ever; 3 (``REFUSED``) if forking here would not be sound."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # never outlives the grader that started it
    if "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None:
        del sys.modules["rfc3987_syntax"]  # left out of the grader's own processes, not of a kernel
    os.environ.setdefault(*INLINE_PLOTS)
    for name in WARM_MODULES:
        importlib.import_module(name)
    _shut_down_fork_handled_pools()
    refused = unsafe_to_fork()
    if refused is not None:
        print(json.dumps({"ready": False, "refused": refused}), flush=True)
        return REFUSED
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(16)
    print(json.dumps({"ready": True, "refused": None}), flush=True)
    while True:
        connection, _ = server.accept()
        refused = unsafe_to_fork()
        if refused is not None:
            _send(connection, {"error": f"the zygote refuses to fork: {refused}"})
            connection.close()
            continue
        if os.fork() == 0:
            server.close()
            _serve(connection)
        connection.close()
        _reap()


def unsafe_to_fork() -> str | None:
    """Why forking this process now would not give a sound kernel, or None: a thread besides
    the main one (its locks and work would be lost in the child), or a device opened."""
    threads = len(os.listdir("/proc/self/task"))
    if threads > 1:
        return f"it runs {threads} threads: something it imported started them"
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:
            continue
        if target.startswith(DEVICE_PREFIXES):
            return f"it has a device open ({target}): a device must be opened in the kernel only"
    return None


def _shut_down_fork_handled_pools() -> None:
    """Fork once and let the child exit: pools that stop themselves at fork (OpenBLAS') stop
    now, and nothing in this process restarts them, since it computes nothing."""
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)


def _reap() -> None:
    """Collect the children that have ended (each reports its kernel's end to its relay)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _serve(connection: socket.socket) -> None:
    """In the zygote's child: open the request's sandbox, fork the kernel's keeper into its pid
    namespace, report on it. This child stays root and never enters the sandbox's mount
    namespace, so that nothing it might import or open could be the notebook's."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _protect_from_the_oom_killer()
        request, descriptors = _receive(connection)
        sandbox = _SandboxEntry(request)
        kernel = os.fork()  # the keeper, whose status is the kernel's
        if kernel == 0:
            connection.close()
            _keep_kernel(request, descriptors, sandbox)
        sandbox.close()
        for descriptor in descriptors:
            os.close(descriptor)
        _send(connection, {"pid": kernel})
        _send(connection, {"exit": _wait_or_kill(kernel, connection)})
        code = 0
    except BaseException as error:  # the relay reports it as the kernel's failure to start
        try:
            _send(connection, {"error": f"{type(error).__name__}: {error}"})
        except BaseException:
            pass
    os._exit(code)


def _protect_from_the_oom_killer() -> None:
    """The machine's out-of-memory killer would see this child as large as the zygote (the
    pages they share) and might kill it, and with it its kernel, for another's memory. Only
    root may lower it; the kernel sets its own back (``OOM_SCORE``)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as adjustment:
            adjustment.write("-1000")
    except OSError:
        pass


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    connection.settimeout(REQUEST_SECONDS)
    descriptors = array.array("i")
    data = b""
    while not data.endswith(b"\n"):
        chunk, ancillary, _, _ = connection.recvmsg(REQUEST_BYTES, socket.CMSG_SPACE(2 * descriptors.itemsize))
        if not chunk:
            raise ConnectionError("the relay left before sending its request")
        data += chunk
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                descriptors.frombytes(payload[: len(payload) - len(payload) % descriptors.itemsize])
        if len(data) > REQUEST_BYTES:
            raise ValueError("the request is too long")
    connection.settimeout(None)
    return json.loads(data), list(descriptors)


def _send(connection: socket.socket, message: dict[str, Any]) -> None:
    connection.sendall(json.dumps(message).encode() + b"\n")


class _SandboxEntry:
    """The holder's namespaces and root, opened and checked to be those bubblewrap made, and the
    sandbox's cgroups and pid namespace joined: the kernel forked next is inside both and enters
    the rest itself (``enter``). Unprivileged, bubblewrap makes the namespaces in a user
    namespace and runs the holder in one nested in it: the outer one is entered first (it gives
    the rights to enter the others), the holder's last."""

    def __init__(self, request: dict[str, Any]) -> None:
        holder = int(request["holder"])
        self.opened = {name: os.open(f"/proc/{holder}/ns/{name}", os.O_RDONLY) for name, _ in NAMESPACES}
        self.root = os.open(f"/proc/{holder}/root", os.O_RDONLY | os.O_DIRECTORY)
        self.owner = fcntl.ioctl(self.opened["mnt"], NS_GET_USERNS)  # the user namespace the others belong to
        # Read now: once in the mount namespace, /proc is the sandbox's, which does not list this process.
        self.own = {name: os.stat(f"/proc/self/ns/{name}").st_ino for name, _ in NAMESPACES}
        # Whatever process has the holder's pid now, these are the namespaces bubblewrap made, and
        # the root was opened while it had them.
        for name, inode in request["namespaces"].items():
            if os.fstat(self.opened[name]).st_ino != inode:
                raise RuntimeError(f"process {holder} is not the sandbox's: its {name} namespace is another")
        if os.stat(f"/proc/{holder}/ns/mnt").st_ino != os.fstat(self.opened["mnt"]).st_ino:
            raise RuntimeError(f"process {holder} ended while its sandbox was opened")
        if os.fstat(self.opened["mnt"]).st_ino == self.own["mnt"]:
            raise RuntimeError(f"process {holder} is not in a sandbox of its own")
        for group in request["cgroups"]:
            with open(os.path.join(group, "cgroup.procs"), "w") as procs:
                procs.write(str(os.getpid()))
        self._enter(self.owner, CLONE_NEWUSER, "user")
        self._enter(self.opened["pid"], CLONE_NEWPID, "pid")  # for the children forked next

    def enter(self, workdir: str) -> None:
        """In the kernel: enter the sandbox's other namespaces and its root."""
        for name, flag in NAMESPACES:
            if flag not in (CLONE_NEWUSER, CLONE_NEWPID):
                self._enter(self.opened[name], flag, name)
        self._enter(self.opened["user"], CLONE_NEWUSER, "user")
        os.fchdir(self.root)
        os.chroot(".")
        os.chdir(workdir)

    def _enter(self, descriptor: int, flag: int, name: str) -> None:
        if os.fstat(descriptor).st_ino == self.own[name]:
            return
        if _libc.setns(descriptor, flag) != 0:
            raise OSError(ctypes.get_errno(), f"cannot enter the sandbox's {name} namespace")
        self.own[name] = os.fstat(descriptor).st_ino

    def close(self) -> None:
        for descriptor in [self.owner, self.root, *self.opened.values()]:
            os.close(descriptor)


def _keep_kernel(request: dict[str, Any], descriptors: list[int], sandbox: _SandboxEntry) -> None:
    """In the sandbox's pid namespace, as root and in the host's mount namespace: fork the
    kernel, wait for it, and end as it ended. The kernel's parent is then a process of the
    sandbox it cannot signal, as bubblewrap's init is a cold kernel's (not pid 0, which
    ``kill`` reads as the kernel's own process group)."""
    code = 1
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        kernel = os.fork()
        if kernel == 0:
            _become_kernel(request, descriptors, sandbox)
        _, status = os.waitpid(kernel, 0)
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
    except BaseException:
        pass
    os._exit(code)


def _become_kernel(request: dict[str, Any], descriptors: list[int], sandbox: _SandboxEntry) -> None:
    """In the sandbox's pid namespace: enter the rest of it, drop every privilege, then run ipykernel."""
    code = 1
    try:
        os.setsid()
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        with open("/proc/self/oom_score_adj", "w") as adjustment:
            adjustment.write(OOM_SCORE)
        sandbox.enter(request["workdir"])
        os.dup2(descriptors[0], 1)
        os.dup2(descriptors[1], 2)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        for name, limit in request["rlimits"].items():
            resource.setrlimit(RLIMITS[name], (limit, limit))
        _drop_privileges(None if request["uid"] is None else int(request["uid"]))
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot set no_new_privs")
        # A cold kernel is dumpable (its /proc files its own to read): a change of uid without an
        # exec is not, unless said again.
        _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        _libc.clearenv()  # what libraries set at import, besides what Python knows of
        os.environ.clear()
        os.environ.update(request["environment"])
        _as_a_kernel_started_here()
        sys.argv = ["ipykernel_launcher", "-f", request["connection_file"]]
        from ipykernel.kernelapp import launch_new_instance

        launch_new_instance()
        code = 0
    except SystemExit as leaving:
        code = leaving.code if isinstance(leaving.code, int) else 1
    except BaseException as error:
        print(f"the forked kernel could not start: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    os._exit(code)


def _drop_privileges(uid: int | None) -> None:
    """Keep no capability at all, and none to regain (as ``setpriv --inh-caps=-all
    --bounding-set=-all``); become ``uid`` first, with no supplementary group, when given
    (``--reuid --regid --clear-groups``). Without a uid of its own (unprivileged bubblewrap,
    whose user namespace gives a process every capability in it) the capabilities go too."""
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for capability in range(last + 1):
        if _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"cannot drop capability {capability} from the bounding set")
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: none, in both halves
    if _libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "cannot clear the capabilities")


def _as_a_kernel_started_here() -> None:
    """What a kernel started cold in the sandbox would have that the zygote settled otherwise:
    its import path starts at the notebook's folder (as ``python -m ipykernel_launcher`` started
    there), Keras' home is the sandbox's, and numpy's global generator is its own (Python's
    ``random`` and the instrumentation's reseed themselves at a fork)."""
    import numpy

    sys.path[0] = os.getcwd()
    config = sys.modules.get("keras.src.backend.config")
    if config is not None and "KERAS_HOME" in os.environ:
        config.__dict__["_KERAS_DIR"] = os.environ["KERAS_HOME"]
    numpy.random.seed()


def _wait_or_kill(kernel: int, connection: socket.socket) -> int:
    """The kernel's exit status once it ends; it is killed if its relay goes away first (its
    sandbox ends with the relay anyway: the holder's pid namespace dies with it)."""
    watched = os.pidfd_open(kernel)
    ready, _, _ = select.select([watched, connection.fileno()], [], [])
    if watched not in ready and not connection.recv(1):
        os.kill(kernel, signal.SIGKILL)
    _, status = os.waitpid(kernel, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
