"""The kernel process, as jupyter_client sees it, of a kernel forked from a zygote. A script
run by path, as ``python -I -S relay.py ZYGOTE_SOCKET REQUEST_FILE PID_FILE SANDBOX...``,
never imported; ``SANDBOX`` is bubblewrap's command line around a holder that prints a line
once the sandbox is built and then waits for its input to close.

It builds the sandbox (bubblewrap tells it the pid of the sandbox's init, ``--info-fd``),
asks the zygote to fork a kernel into it (``grader/kernel/zygote.py`` says the protocol),
writes the kernel's pid to ``PID_FILE`` and exits with the kernel's status. When the relay
dies, however it dies (jupyter_client's interrupt ends it, and bubblewrap in its process
group, as it ends bubblewrap for a kernel started cold), the holder's input closes, the
holder ends, and with it the sandbox's pid namespace and the kernel in it.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import subprocess
import sys

# Exit status when the zygote could not fork the kernel (the host then starts kernels cold).
NOT_FORKED = 3


def main(zygote: str, request_file: str, pid_file: str, sandbox: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # an interrupt ends it, as it ends bubblewrap
    import time

    print("T relay", time.time(), file=sys.stderr, flush=True)
    info_read, info_write = os.pipe()
    holder = subprocess.Popen(
        [sandbox[0], "--info-fd", str(info_write), *sandbox[1:]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(info_write,),
    )  # fmt: skip
    os.close(info_write)
    try:
        with os.fdopen(info_read) as info:
            init = json.loads(info.read() or "{}").get("child-pid")
        assert holder.stdout is not None
        if not isinstance(init, int) or not holder.stdout.readline():
            print("the kernel's sandbox could not be built (see bubblewrap's message above)", file=sys.stderr)
            return NOT_FORKED
        with open(request_file) as file:
            request = {**json.load(file), "holder": init}
        print("T built", time.time(), file=sys.stderr, flush=True)
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
        print("T forked", time.time(), file=sys.stderr, flush=True)
        with open(pid_file, "w") as file:
            file.write(str(kernel))
        ended = json.loads(answers.readline() or '{"exit": 1}')
        return int(ended.get("exit", 1))
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
