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
kernel's pid in the host's pid namespace), then ``{"exit": code}`` (128 + n when killed by
signal n, as bubblewrap reports it); the zygote answers ``{"error": why}`` instead when it
refuses. On start the zygote prints one line on its stdout: ``{"ready": true}`` or
``{"ready": false, "refused": why}``.
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
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
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
# Seconds a relay has to send its request once connected
REQUEST_SECONDS = 30

_libc = ctypes.CDLL(None, use_errno=True)


def main(socket_path: str) -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # never outlives the grader that started it
    os.environ.setdefault(*INLINE_PLOTS)
    for name in WARM_MODULES:
        importlib.import_module(name)
    _shut_down_fork_handled_pools()
    refused = unsafe_to_fork()
    print(json.dumps({"ready": refused is None, "refused": refused}), flush=True)
    if refused is not None:
        return
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(16)
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
    """In the zygote's child: enter the request's sandbox, fork the kernel there, report on it."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        request, descriptors = _receive(connection)
        _enter_sandbox(request)
        kernel = os.fork()
        if kernel == 0:
            connection.close()
            _become_kernel(request, descriptors)
        for descriptor in descriptors:
            os.close(descriptor)
        _send(connection, {"pid": kernel})
        _send(connection, {"exit": _wait_or_kill(kernel, connection)})
        code = 0
    except Exception as error:  # the relay reports it as the kernel's failure to start
        try:
            _send(connection, {"error": f"{type(error).__name__}: {error}"})
        except OSError:
            pass
    os._exit(code)


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


def _enter_sandbox(request: dict[str, Any]) -> None:
    """Join the sandbox's cgroups, then the holder's namespaces and root. Unprivileged,
    bubblewrap makes the namespaces in a user namespace and runs the holder in one nested in it:
    the outer one is entered first (it gives the rights to enter the others), the holder's last."""
    holder = int(request["holder"])
    for group in request["cgroups"]:
        with open(os.path.join(group, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    opened = {name: os.open(f"/proc/{holder}/ns/{name}", os.O_RDONLY) for name, _ in NAMESPACES}
    owner = fcntl.ioctl(opened["mnt"], NS_GET_USERNS)  # the user namespace the mount namespace belongs to
    root = os.open(f"/proc/{holder}/root", os.O_RDONLY | os.O_DIRECTORY)
    order = [(owner, CLONE_NEWUSER, "user")]
    order += [(opened[name], flag, name) for name, flag in NAMESPACES if flag != CLONE_NEWUSER]
    order += [(opened["user"], CLONE_NEWUSER, "user")]
    # Read now: once in the mount namespace, /proc is the sandbox's, which does not list this process.
    own = {name: os.stat(f"/proc/self/ns/{name}").st_ino for name, _ in NAMESPACES}
    if os.fstat(opened["mnt"]).st_ino == own["mnt"]:
        raise RuntimeError(f"process {holder} is not in a sandbox of its own")
    for descriptor, flag, name in order:
        if os.fstat(descriptor).st_ino == own[name]:
            continue
        if _libc.setns(descriptor, flag) != 0:
            raise OSError(ctypes.get_errno(), f"cannot enter the sandbox's {name} namespace")
        if flag == CLONE_NEWUSER:
            own["user"] = os.fstat(descriptor).st_ino
    for descriptor in [owner, *opened.values()]:
        os.close(descriptor)
    os.fchdir(root)
    os.chroot(".")
    os.close(root)
    os.chdir(request["workdir"])


def _become_kernel(request: dict[str, Any], descriptors: list[int]) -> None:
    """In the sandbox's pid namespace: drop every privilege, then run ipykernel."""
    code = 1
    try:
        os.setsid()
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.dup2(descriptors[0], 1)
        os.dup2(descriptors[1], 2)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        for name, limit in request["rlimits"].items():
            resource.setrlimit(RLIMITS[name], (limit, limit))
        _drop_privileges(None if request["uid"] is None else int(request["uid"]))
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "cannot set no_new_privs")
        os.environ.clear()
        os.environ.update(request["environment"])
        sys.path[0] = os.getcwd()  # as ``python -m ipykernel_launcher`` started in the notebook's folder
        sys.argv = ["ipykernel_launcher", "-f", request["connection_file"]]
        _reseed()
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


def _reseed() -> None:
    """Every kernel draws its own random numbers: numpy's global generator was seeded when the
    zygote imported it (Python's ``random`` reseeds itself at fork)."""
    import numpy

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
    main(sys.argv[1])
