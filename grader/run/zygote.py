"""Kernels forked from a warm zygote instead of started cold.

A cold kernel imports Keras and its backend itself, seconds of CPU each time. A ``Zygote`` is
a process (``grader/kernel/zygote.py``) that has imported them once, in the variables a
sandbox gets and nothing else of the grader's, and forks a kernel per notebook into that
notebook's sandbox (``Sandbox.forked_kernel_command``: bubblewrap builds the sandbox as for a
cold kernel, and the forked kernel enters it). A worker keeps one per kernel environment
(``ZYGOTES``).

``$GRADER_ZYGOTE`` chooses: unset, kernels are forked in batches (a worker with more notebooks
to come starts a zygote) and cold otherwise; ``on``, always forked; ``off``, never; a path, the
socket of a zygote already running (``grader zygote``, which the Jupyter extension keeps
warm), used when it was started for the same environment. Kernels start cold where a sandbox
cannot be built around a fork: without bubblewrap, under a systemd scope, or when the zygote
refuses to fork (it holds threads or an open device).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from grader.run.isolation import Isolation
from grader.run.sandbox import kernel_variables, process_start

SWITCH = "GRADER_ZYGOTE"
# Seconds a zygote may take to import everything and say it is ready
READY_SECONDS = 300
# Beside a running zygote's socket: the environment it was started with, for a grader to compare.
ENVIRONMENT_SUFFIX = ".environment.json"


class ZygoteUnavailable(RuntimeError):
    """The zygote could not start, or refuses to fork."""


class Zygote:
    """A zygote process started by this one, for kernels that run with ``environment`` (the
    backend's variables). It ends with this process."""

    def __init__(self, environment: dict[str, str]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="grader-zygote-"))  # 0700: no sandbox reaches the socket
        self.socket = self.folder / "zygote.sock"
        self.log = self.folder / "zygote.log"
        variables = zygote_variables(self.folder, environment)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                _zygote_command(self.socket), env=variables, cwd=self.folder, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        ready = _first_line(self.process, READY_SECONDS)
        if not ready.get("ready"):
            self.close()
            raise ZygoteUnavailable(str(ready.get("refused") or f"it did not start: {self._log_tail()}"))
        _describe(self.socket, environment, self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:].strip() or "no message"
        except OSError:
            return "no message"


def serve(socket: Path, environment: dict[str, str]) -> None:
    """Become a zygote for kernels that run with ``environment``, listening on ``socket``,
    until this process' parent ends (``grader zygote``; a grader finds it as
    ``$GRADER_ZYGOTE=SOCKET``). ``socket``'s folder must be this user's alone, since whoever
    can reach the socket can have kernels forked."""
    folder = socket.parent.resolve()
    status = folder.stat()
    if status.st_uid != os.geteuid() or status.st_mode & 0o077:
        raise ZygoteUnavailable(f"{folder} must be a folder only this user may enter (chmod 700 {folder})")
    _describe(socket, environment, os.getpid())  # the zygote's, once this process becomes it
    os.chdir(folder)
    os.execve(sys.executable, _zygote_command(socket), zygote_variables(folder, environment))


def _zygote_command(socket: Path) -> list[str]:
    return [sys.executable, "-m", "grader.kernel.zygote", str(socket)]


def _describe(socket: Path, environment: dict[str, str], pid: int) -> None:
    """Beside ``socket``: the environment its zygote imported in, and its process, for a grader
    to tell whether it may fork kernels from it, and whether it still runs."""
    described = {"environment": environment, "pid": pid, "started": process_start(pid)}
    Path(f"{socket}{ENVIRONMENT_SUFFIX}").write_text(json.dumps(described))


def zygote_variables(home: Path, environment: dict[str, str]) -> dict[str, str]:
    """The variables a zygote runs with: a kernel's, at home in its own folder."""
    return kernel_variables(str(home)) | environment


def _first_line(process: subprocess.Popen[bytes], seconds: float) -> dict[str, object]:
    """The zygote's first line, read as JSON; an empty dict if it ended or took too long."""
    line: list[bytes] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(seconds)
    try:
        answer = json.loads(line[0]) if line and line[0] else {}
    except ValueError:
        answer = {}
    return answer if isinstance(answer, dict) else {}


def usable_for(isolation: Isolation) -> str | None:
    """Why kernels cannot be forked under ``isolation``, or None if they can."""
    if not isolation.bubblewrap:
        return "without bubblewrap there is no sandbox to fork a kernel into"
    if isolation.cgroups == "systemd":
        return "a systemd scope is made for the process it starts, not for a forked one"
    return None


class Zygotes:
    """This process' zygotes, one per kernel environment, started when a batch first needs one."""

    def __init__(self) -> None:
        # Held while a zygote is chosen or refused: a spare kernel's thread may refuse one.
        self._lock = threading.Lock()
        self._started: dict[tuple[tuple[str, str], ...], Zygote] = {}
        # Environments whose zygote would not start or fork: their kernels start cold.
        self._refused: dict[tuple[tuple[str, str], ...], str] = {}
        self._refused_sockets: set[Path] = set()
        self._several = False

    def expect_several(self) -> None:
        """This process will start several kernels, one after another (``grader new`` and
        ``grader validate``): fork them all, as in a batch."""
        self._several = True

    def socket_for(self, isolation: Isolation, environment: dict[str, str], batch: bool) -> Path | None:
        """The socket of the zygote to fork a kernel for ``environment`` from, or None for a
        cold start. ``batch``: more kernels like it are to come in this process."""
        with self._lock:
            return self._socket_for(isolation, environment, batch)

    def _socket_for(self, isolation: Isolation, environment: dict[str, str], batch: bool) -> Path | None:
        switch = os.environ.get(SWITCH, "").strip()
        if switch.lower() in ("off", "0", "no") or usable_for(isolation) is not None:
            return None
        key = tuple(sorted(environment.items()))
        if key in self._refused:
            return None
        if switch and switch.lower() not in ("on", "1", "yes"):
            running = _running(Path(switch), environment)
            return None if running is None or running in self._refused_sockets else running
        zygote = self._started.get(key)
        if zygote is not None and not zygote.alive():
            del self._started[key]
            zygote.close()
            zygote = None
        if zygote is None:
            if not (batch or switch or self._several):
                return None
            try:
                zygote = self._started[key] = Zygote(environment)
            except (OSError, ZygoteUnavailable) as error:
                self._refused[key] = str(error)
                return None
        return zygote.socket

    def refuse(self, socket: Path, why: str) -> None:
        """A kernel forked from ``socket``'s zygote failed to start: kernels for its environment
        start cold from now on in this process."""
        with self._lock:
            self._refuse(socket, why)

    def _refuse(self, socket: Path, why: str) -> None:
        self._refused_sockets.add(socket)
        for key, zygote in list(self._started.items()):
            if zygote.socket == socket:
                self._refused[key] = why
                zygote.close()
                del self._started[key]

    def refused(self, socket: Path) -> bool:
        """Whether kernels are no longer forked from ``socket``'s zygote."""
        return socket in self._refused_sockets

    def close(self) -> None:
        with self._lock:
            for zygote in self._started.values():
                zygote.close()
            self._started.clear()


def _running(socket: Path, environment: dict[str, str]) -> Path | None:
    """``socket`` if a zygote that runs still listens there for ``environment``, else None."""
    try:
        described = json.loads(Path(f"{socket}{ENVIRONMENT_SUFFIX}").read_text())
        same = described["environment"] == environment
        running = isinstance(described["pid"], int) and process_start(described["pid"]) == described["started"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return socket if same and running and socket.is_socket() else None


ZYGOTES = Zygotes()
atexit.register(ZYGOTES.close)
