"""The sandbox's launcher where there is no bubblewrap, whose pid namespace (with
``--die-with-parent``) would end every process of the sandbox. A script run by path, as
``python -I -S reaper.py <the grader's pid> <command>``, never imported.

It dies with the grader. Its child, the reaper, in a process group of its own, is a child
subreaper: every orphan of the command (a ``setsid`` process, a double fork) becomes its child,
so the watchdog counts it among the launcher's descendants; when the command ends or the
launcher is killed (jupyter_client kills the launcher's process group, the evaluator the
launcher alone), the reaper kills them all. The command runs in the launcher's process group,
which jupyter_client interrupts; its exit status (128 + n when killed by signal n, as
bubblewrap reports it) is the launcher's.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
KILLED = 128 + signal.SIGKILL


def exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def children() -> list[int]:
    """This process's children, orphans it adopted included."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == os.getpid():
                    found.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def reaped() -> dict[int, int]:
    """The children that ended since the last call, with their wait statuses."""
    ended: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended[pid] = status


def end_all() -> None:
    """Kill every child until none is left (an orphan adopted meanwhile included)."""
    while True:
        for pid in children():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def main(grader: int, command: list[str]) -> None:
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != grader:
        os._exit(KILLED)
    launcher, group = os.getpid(), os.getpgrp()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD, signal.SIGTERM})
    reaper = os.fork()
    if reaper:
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os._exit(exit_code(os.waitpid(reaper, 0)[1]))
    os.setpgid(0, 0)
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    code = KILLED
    if os.getppid() == launcher:
        kernel = os.fork()
        if kernel == 0:
            try:
                try:
                    os.setpgid(0, group)
                except OSError:
                    pass  # the launcher is gone: the reaper ends this process at once
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, set())
                os.execvp(command[0], command)
            except OSError as error:
                os.write(2, f"cannot run {command[0]}: {error}\n".encode())
            finally:
                os._exit(127)
        while signal.sigwait({signal.SIGCHLD, signal.SIGTERM}) == signal.SIGCHLD:
            ended = reaped()
            if kernel in ended:
                code = exit_code(ended[kernel])
                break
    end_all()
    os._exit(code)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
