"""The Check button's server side without Jupyter: which notebooks it grades, one check per
notebook at a time, what a check's state says, and a cancel that stops all it started. A
stand-in for ``grader check`` (a script that says what it does, then waits) keeps it fast."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psutil
import pytest

from grader.jupyter.checks import CheckRefused, Checks

# Says it runs cell 3, starts a child that waits too, then waits itself, or prints a result.
STAND_IN = """
import json, subprocess, sys, time
from pathlib import Path
arguments = sys.argv[1:]
progress = Path(arguments[arguments.index("--progress") + 1])
progress.write_text(json.dumps({"stage": "cell", "doing": "running cell 3 (code cell 2 of 9)", "elapsed": 1.0}))
if "--spec" in arguments:
    sys.exit(print("error: no spec at " + arguments[arguments.index("--spec") + 1], file=sys.stderr) or 2)
if "wait" in Path(arguments[1]).name:
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    time.sleep(120)
report = Path(arguments[arguments.index("--report") + 1]) / "submissions"
report.mkdir(parents=True)
(report / "homework.html").write_text("<p>the page</p>")
progress.write_text(json.dumps({"stage": "drawn", "doing": "done", "page": "submissions/homework.html"}))
print(json.dumps({"id": "homework", "score": 12.5, "max_score": 16, "checks": [], "warnings": [], "answers": []}))
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    served = tmp_path / "served"
    (served / "course").mkdir(parents=True)
    for name in ("homework.ipynb", "wait.ipynb"):
        (served / "course" / name).write_text("{}")
    (tmp_path / "outside.ipynb").write_text("{}")
    (served / "course" / "link.ipynb").symlink_to(tmp_path / "outside.ipynb")
    (served / "notes.txt").write_text("")
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    return served


MADE: list[Checks] = []


@pytest.fixture(autouse=True)
def closing_every_checks():
    """Each test's Checks are closed after it, as the server closes its own: their zygote ends."""
    yield
    while MADE:
        MADE.pop().close()


def made(checks: Checks) -> Checks:
    MADE.append(checks)
    return checks


def checks_of(root: Path, options: list[str] | None = None) -> Checks:
    return made(Checks(root, options, command=[sys.executable, str(root.parent / "stand_in.py")]))


def finished(checks: Checks, check_id: str) -> dict:
    check = checks.get(check_id)
    assert check is not None
    check.process.wait(timeout=60)
    return check.state()


def test_only_saved_notebooks_under_the_server_s_root_are_checked(root: Path):
    checks = checks_of(root)
    for path, why in [
        ("../outside.ipynb", "outside the folder this Jupyter server serves"),
        ("course/link.ipynb", "outside the folder this Jupyter server serves"),  # a link out is outside
        ("notes.txt", "is not a saved notebook"),
        ("course/missing.ipynb", "is not a saved notebook"),
        ("", "no notebook was named"),
    ]:
        with pytest.raises(CheckRefused, match=why):
            checks.start(path)


def test_a_check_s_state_is_its_result_and_its_page(root: Path):
    checks = checks_of(root)
    check = checks.start("course/homework.ipynb")
    state = finished(checks, check.id)
    assert state["state"] == "done" and state["mode"] == "quick"
    assert state["result"]["score"] == 12.5
    assert state["page"] == "report/submissions/homework.html"
    assert checks.page(check.id, "submissions/homework.html").read_text() == "<p>the page</p>"
    assert checks.page(check.id, "../stdout.json") is None  # nothing outside its report is served
    # What grader check said when it failed (a spec that is not there) is the state's error
    failing = checks_of(root, ["--spec", "/nowhere/exercise.toml"])
    state = finished(failing, failing.start("course/homework.ipynb", full=True).id)
    assert state["state"] == "error" and state["mode"] == "full"
    assert state["error"] == "error: no spec at /nowhere/exercise.toml"


def test_one_check_per_notebook_runs_and_a_cancel_stops_all_it_started(root: Path):
    checks = checks_of(root)
    check = checks.start("course/wait.ipynb")
    assert checks.start("course/wait.ipynb") is check  # a second click while it runs
    deadline = time.monotonic() + 30
    while check.state().get("doing") == "starting" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert check.state()["doing"] == "running cell 3 (code cell 2 of 9)"
    started = psutil.Process(check.process.pid)
    while not started.children() and time.monotonic() < deadline:
        time.sleep(0.1)
    (child,) = started.children()
    check.cancel()
    assert check.state()["state"] == "cancelled"
    child.wait(timeout=10)  # gone with the check's process group
    assert not psutil.pid_exists(child.pid) or child.status() == psutil.STATUS_ZOMBIE
    assert checks.start("course/wait.ipynb") is not check  # a new click starts a new one
    checks.close()
    assert checks.checks == {}


def test_the_check_command_is_grader_check_with_what_the_server_was_configured_with(root: Path):
    echo = "import sys, json; print(json.dumps({'checks': [], 'argv': sys.argv[1:]}))"
    checks = made(Checks(root, ["--data", "/data/mnist.npz"], command=[sys.executable, "-c", echo]))
    state = finished(checks, checks.start("course/homework.ipynb").id)
    arguments = state["result"]["argv"]
    assert arguments[:2] == ["check", str((root / "course" / "homework.ipynb").resolve())]
    assert "--json" in arguments and "--quick" in arguments and arguments[-2:] == ["--data", "/data/mnist.npz"]
    assert Path(arguments[arguments.index("--report") + 1]).is_absolute()
    # By default, the command itself
    assert Checks(root).command == [sys.executable, "-m", "grader"]


def test_the_first_check_starts_a_zygote_every_check_is_told_of_and_close_ends_it(root: Path):
    # As ``grader zygote``: says how it was started, then runs (the refusing one exits 3 at once)
    echo = (
        "import json, os, sys, time\n"
        "said = {'checks': [], 'argv': sys.argv[1:], 'zygote': os.environ.get('GRADER_ZYGOTE')}\n"
        "print(json.dumps(said), flush=True)\n"
        "if sys.argv[1] == 'zygote': time.sleep(120); sys.exit(3)"
    )
    checks = made(Checks(root, ["--backend", "jax"], command=[sys.executable, "-c", echo]))
    assert checks.zygote is None  # a server nobody checks with keeps no zygote
    first = finished(checks, checks.start("course/homework.ipynb").id)
    zygote = checks.zygote
    second = finished(checks, checks.start("course/wait.ipynb").id)
    socket = checks.zygote_socket
    assert socket is not None and first["result"]["zygote"] == second["result"]["zygote"] == str(socket)
    assert checks.zygote is zygote and zygote is not None and zygote.poll() is None  # started once
    said = json.loads(socket.with_name("zygote.log").read_text())
    # As ``grader zygote SOCKET`` with the server's backend, in a folder only its user may enter
    assert said["argv"] == ["zygote", str(socket), "--backend", "jax"]
    assert socket.parent.stat().st_mode & 0o777 == 0o700
    # A zygote that died is started again with the next check
    zygote.kill()
    zygote.wait()
    finished(checks, checks.start("course/homework.ipynb").id)
    assert checks.zygote is not zygote and checks.zygote.poll() is None
    checks.close()
    assert not socket.parent.exists()
    # One that refused (no bubblewrap, threads) is not: those checks start their kernels cold
    refusing_echo = echo.replace("time.sleep(120)", "time.sleep(0)")
    refusing = made(Checks(root, command=[sys.executable, "-c", refusing_echo]))
    finished(refusing, refusing.start("course/homework.ipynb").id)
    assert refusing.zygote is not None and refusing.zygote.wait(timeout=60) == 3
    finished(refusing, refusing.start("course/homework.ipynb").id)
    assert refusing.zygote.returncode == 3  # the same process, not started again
