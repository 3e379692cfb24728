"""The checks the Jupyter Check button starts: each one ``grader check`` in a process of its
own (the same path as the command, its sandbox included), in a new session so that a cancel
stops it and everything it started. Plain Python: the handlers (``handlers.py``) are Jupyter's
side of it, this is the grader's.

From the first check on, the server keeps a zygote warm (``grader zygote``): every later check
forks its kernel from it, with Keras already imported, instead of starting Python cold."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What a check's state says of what it printed on stderr when it failed, at most
MAX_ERROR_CHARACTERS = 2000
# How long a cancelled check has to stop its kernel and sandbox before it is killed
CANCEL_GRACE_SECONDS = 10.0
# Finished checks kept for their pages, the oldest dropped first
KEPT_CHECKS = 20
# How ``grader zygote`` exits where kernels cannot be forked (no bubblewrap, threads): not restarted
ZYGOTE_REFUSED = 3


class CheckRefused(ValueError):
    """A check that cannot start: the path is outside the server's root, or not a notebook."""


@dataclass
class Check:
    """One run of ``grader check`` on a notebook, and the folder its files go to."""

    id: str
    path: str  # the notebook as Jupyter names it, relative to the server's root
    mode: str
    process: subprocess.Popen[bytes]
    folder: Path
    started: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    finished: float | None = None

    @property
    def progress_file(self) -> Path:
        return self.folder / "progress.json"

    @property
    def report_dir(self) -> Path:
        return self.folder / "report"

    def running(self) -> bool:
        if self.finished is None and self.process.poll() is not None:
            self.finished = time.monotonic()
        return self.finished is None

    def state(self) -> dict[str, Any]:
        """What the page shows: running (what it is doing, for how long), cancelled, done (the
        result as ``grader check --json`` gives it, and its page), or an error (what it said)."""
        elapsed = round((self.finished or time.monotonic()) - self.started, 1)
        state: dict[str, Any] = {"id": self.id, "path": self.path, "mode": self.mode, "elapsed": elapsed}
        if self.running():
            doing = _read_json(self.progress_file) or {}
            return {**state, "state": "running", "doing": str(doing.get("doing", "starting"))}
        if self.cancelled:
            return {**state, "state": "cancelled"}
        result = _read_json(self.folder / "stdout.json")
        if isinstance(result, dict) and "checks" in result:
            # The page's path in the report, as grader check said once it had drawn it
            drawn = (_read_json(self.progress_file) or {}).get("page")
            page = f"report/{drawn}" if isinstance(drawn, str) and self.page_file(drawn) else None
            return {**state, "state": "done", "result": result, "page": page, "exit_code": self.process.returncode}
        said = _read_text(self.folder / "stderr.txt")[-MAX_ERROR_CHARACTERS:].strip()
        return {**state, "state": "error", "error": said or f"grader check exited with {self.process.returncode}"}

    def page_file(self, relative: str) -> Path | None:
        """A file of its report (its page, the notebook as it ran), or None."""
        found = (self.report_dir / relative).resolve()
        if not found.is_relative_to(self.report_dir.resolve()) or not found.is_file():
            return None
        return found

    def cancel(self) -> None:
        """Interrupt it (its kernel and sandbox are shut down as on Ctrl-C), then kill what is left."""
        if not self.running():
            return
        self.cancelled = True
        _signal_group(self.process, signal.SIGINT)
        try:
            self.process.wait(timeout=CANCEL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait()
        self.running()


class Checks:
    """The checks of one Jupyter server: at most one running per notebook (a second click
    while one runs gets that one), for notebooks under ``root`` only."""

    def __init__(self, root: Path, options: list[str] | None = None, command: list[str] | None = None) -> None:
        self.root = root.resolve()
        # What every check is given besides the notebook: --spec, --data, as the server was configured
        self.options = list(options or [])
        self.command = command or [sys.executable, "-m", "grader"]
        self.checks: dict[str, Check] = {}
        # The zygote checks fork their kernels from (``grader zygote``, listening in a folder of
        # its own): started with the first check, kept until close
        self.zygote: subprocess.Popen[bytes] | None = None
        self.zygote_socket: Path | None = None

    def notebook(self, path: str) -> Path:
        """The file ``path`` (as Jupyter names it) names, refused unless it is a notebook under the root."""
        if not isinstance(path, str) or not path.strip() or "\0" in path:
            raise CheckRefused("no notebook was named")
        found = (self.root / path.lstrip("/")).resolve()
        if not found.is_relative_to(self.root):
            raise CheckRefused(f"{path} is outside the folder this Jupyter server serves")
        if found.suffix != ".ipynb" or not found.is_file():
            raise CheckRefused(f"{path} is not a saved notebook (.ipynb) on the server")
        return found

    def start(self, path: str, full: bool = False) -> Check:
        notebook = self.notebook(path)
        for check in self.checks.values():
            if check.path == path and check.running():
                return check
        self._forget_old()
        zygote = self._keep_zygote()
        folder = Path(tempfile.mkdtemp(prefix="grader-check-"))
        arguments = [*self.command, "check", str(notebook), "--json", "--report", str(folder / "report")]
        arguments += ["--progress", str(folder / "progress.json"), "--full" if full else "--quick", *self.options]
        with (folder / "stdout.json").open("wb") as stdout, (folder / "stderr.txt").open("wb") as stderr:
            process = subprocess.Popen(
                arguments, cwd=notebook.parent, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                start_new_session=True,  # its own process group: a cancel reaches all it started
                env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "GRADER_ZYGOTE": str(zygote)},
            )  # fmt: skip
        check = Check(secrets.token_hex(8), path, "full" if full else "quick", process, folder)
        self.checks[check.id] = check
        return check

    def _keep_zygote(self) -> Path:
        """The zygote's socket, the zygote started with the first check, and again if it ended
        other than by refusing (a check that comes before it is ready, or while it is down, or
        where kernels cannot be forked, starts its kernel cold: the zygote's log beside its
        socket says why)."""
        if self.zygote_socket is None:
            self.zygote_socket = Path(tempfile.mkdtemp(prefix="grader-zygote-")) / "zygote.sock"
        if self.zygote is None or self.zygote.poll() not in (None, ZYGOTE_REFUSED):
            self.zygote_socket.unlink(missing_ok=True)
            backend = self.options[self.options.index("--backend") :][:2] if "--backend" in self.options else []
            with self.zygote_socket.with_name("zygote.log").open("wb") as log:
                self.zygote = subprocess.Popen(
                    [*self.command, "zygote", str(self.zygote_socket), *backend],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                )  # fmt: skip
        return self.zygote_socket

    def get(self, check_id: str) -> Check | None:
        return self.checks.get(check_id)

    def page(self, check_id: str, relative: str) -> Path | None:
        """A file of a finished check's report (its page, the notebook as it ran), or None."""
        check = self.checks.get(check_id)
        if check is None or check.running():
            return None
        return check.page_file(relative)

    def close(self) -> None:
        """Stop what runs and remove every check's files: the server is stopping."""
        for check in self.checks.values():
            check.cancel()
            shutil.rmtree(check.folder, ignore_errors=True)
        self.checks.clear()
        if self.zygote is not None:
            _signal_group(self.zygote, signal.SIGKILL)
            self.zygote.wait()
        if self.zygote_socket is not None:
            shutil.rmtree(self.zygote_socket.parent, ignore_errors=True)

    def _forget_old(self) -> None:
        finished = [check for check in self.checks.values() if not check.running()]
        for check in sorted(finished, key=lambda check: check.started)[: max(0, len(finished) - KEPT_CHECKS + 1)]:
            shutil.rmtree(check.folder, ignore_errors=True)
            del self.checks[check.id]


def _signal_group(process: subprocess.Popen[bytes], sent: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sent)
    except (ProcessLookupError, PermissionError):
        pass


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
