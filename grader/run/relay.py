"""The kernel process, as jupyter_client sees it, of a kernel forked from a zygote. A script
run by path, as ``python -I -S relay.py PARENT ZYGOTE_SOCKET REQUEST_FILE STATE_FILE SANDBOX...``,
never imported; ``PARENT`` is the pid of the grader process that starts it, ``SANDBOX`` is
bubblewrap's command line around a holder that prints a line once the sandbox is built and then
waits for its input to close.

It builds the sandbox (bubblewrap tells it the pid and namespaces of the sandbox's init,
``--info-fd``), asks the zygote to fork a kernel into it (``grader/kernel/zygote.py`` says the
protocol), writes to ``STATE_FILE`` the kernel's pid and start, or that the zygote's child lost
it, and exits with the kernel's status. It dies with the grader process that started it, and
however it dies (jupyter_client's interrupt ends it, and bubblewrap in its process group, as it
ends bubblewrap for a kernel started cold), the holder's input closes, the holder ends, and
with it the sandbox's pid namespace and the kernel in it.
"""

from __future__ import annotations

import array
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

# Exit status when the zygote could not fork the kernel (the host then starts kernels cold).
NOT_FORKED = 3
PR_SET_PDEATHSIG = 1


def main(parent: int, zygote: str, request_file: str, state_file: str, sandbox: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # an interrupt ends it, as it ends bubblewrap
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the grader died before the line above
        return NOT_FORKED
    info_read, info_write = os.pipe()
    holder = subprocess.Popen(
        [sandbox[0], "--info-fd", str(info_write), *sandbox[1:]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(info_write,),
    )  # fmt: skip
    os.close(info_write)
    try:
        with os.fdopen(info_read) as info:
            built = json.loads(info.read() or "{}")
        assert holder.stdout is not None
        if not isinstance(built.get("child-pid"), int) or not holder.stdout.readline():
            print("the kernel's sandbox could not be built (see bubblewrap's message above)", file=sys.stderr)
            return NOT_FORKED
        with open(request_file) as file:
            # The namespaces bubblewrap made: the zygote's child checks it enters these, whatever
            # process has the init's pid by then.
            namespaces = {name: built.get(f"{name}-namespace") for name in ("mnt", "net", "pid")}
            request = {**json.load(file), "holder": built["child-pid"], "namespaces": namespaces}
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(zygote)
        connection.sendmsg(
            [json.dumps(request).encode() + b"\n"],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [1, 2]))],
        )
        answers = connection.makefile("r")
        forked = json.loads(answers.readline() or '{"error": "the zygote closed the connection"}')
        if "pid" not in forked:
            print(f"the zygote did not fork the kernel: {forked.get('error')}", file=sys.stderr)
            return NOT_FORKED
        kernel = int(forked["pid"])
        Path(state_file).write_text(json.dumps({"pid": kernel, "started": _start_of(kernel)}))
        ended = json.loads(answers.readline() or "{}")
        if "exit" not in ended:  # the zygote's child ended before its kernel: the grader's fault
            Path(state_file).write_text(json.dumps({"lost": "the zygote's child that held the kernel ended"}))
            return NOT_FORKED
        return int(ended["exit"])
    except (OSError, ValueError) as error:
        print(f"the zygote could not fork the kernel: {error}", file=sys.stderr)
        return NOT_FORKED
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()


def _start_of(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot): with its pid, it names the process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
