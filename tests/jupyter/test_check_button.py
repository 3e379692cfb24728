"""The Check button inside Jupyter, in a real browser: JupyterLab 4 and Notebook 7 started with
the grader installed, driven in Debian's Chromium with Playwright. A notebook's Check grades it
on the server through ``grader check`` and the page shows the score ``grader check --json``
gives; a check can be cancelled; a server told of a spec that is not there says so."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import ARTIFACTS, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.kernel]

SAMPLE = ROOT / "submissions" / "correct_other_spellings.ipynb"
TOKEN = "grader-check-test-token"
# A quick check of a sample takes ~20 s on the 2-core CI machine; its kernel start included
CHECK_SECONDS = 240


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class JupyterServer:
    """A Jupyter server (``jupyterlab`` or ``notebook``) over ``root``, with the grader's
    extensions as installed, its own config and runtime folders."""

    def __init__(self, app: str, root: Path, home: Path, options: list[str]) -> None:
        self.port = _free_port()
        self.root = root
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        }
        # No question about fetching Jupyter's news over the pages (there is no network anyway)
        settings = home / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        self.log = (home / f"{app}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", app, "--no-browser", f"--port={self.port}", "--ServerApp.ip=127.0.0.1",
             f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", *options,
             *(["--allow-root"] if os.geteuid() == 0 else [])],  # CI's container runs as root
            stdout=self.log, stderr=subprocess.STDOUT, env=environment,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={TOKEN}", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise AssertionError(f"{app} did not start: {(home / f'{app}.log').read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def grader_checks_running(self) -> list[str]:
        """The ``grader check`` processes the server started that still run."""
        found = []
        for process in psutil.Process(self.process.pid).children(recursive=True):
            try:
                line = process.cmdline()
            except psutil.Error:
                continue
            if "grader" in line and "check" in line:
                found.append(" ".join(line))
        return found


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("jupyter", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("needs JupyterLab and Notebook 7, which the grader installs: pip install -e .")
    root = tmp_path_factory.mktemp("jupyter-root")
    (root / "course").mkdir()
    shutil.copy(SAMPLE, root / "course" / "homework.ipynb")
    return root


@pytest.fixture(scope="module")
def server_options(mnist_path: Path) -> list[str]:
    return [f"--GraderCheck.data={mnist_path}"]


@pytest.fixture(scope="module")
def cli_score(workspace: Path, mnist_path: Path) -> str:
    """``grader check --json``'s score of the notebook, as "S / M"."""
    completed = subprocess.run(
        [sys.executable, "-m", "grader", "check", str(workspace / "course" / "homework.ipynb"), "--json",
         "--data", str(mnist_path)],
        capture_output=True, text=True, timeout=CHECK_SECONDS,
    )  # fmt: skip
    result = json.loads(completed.stdout)
    return f"{result['score']:g} / {result['max_score']:g}"


@contextmanager
def _server(app: str, workspace: Path, tmp_path: Path, options: list[str]) -> Iterator[JupyterServer]:
    server = JupyterServer(app, workspace, tmp_path, options)
    try:
        yield server
    finally:
        server.stop()


def _open(browser: Any, server: JupyterServer, path: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server.url}{path}?token={TOKEN}")
    page.get_by_role("button", name="Check", exact=True).wait_for(timeout=60_000)
    # The notebook's cells drawn: it is open
    page.locator(".jp-Notebook .jp-Cell .jp-InputArea").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)  # for the pictures: the cells drawn whole
    return page


def _check_and_read_score(page: Any) -> str:
    page.get_by_role("button", name="Check", exact=True).click()
    page.locator(".jp-GraderCheck-running").wait_for(timeout=30_000)
    # A second click while it runs starts nothing: the button is disabled
    assert page.get_by_role("button", name="Check", exact=True).is_disabled()
    points = page.locator(".jp-GraderCheck-points")
    points.wait_for(timeout=CHECK_SECONDS * 1000)
    return str(points.inner_text())


def test_jupyterlab_s_check_button_shows_the_score_grader_check_gives(
    browser: Any, workspace: Path, server_options: list[str], cli_score: str, tmp_path: Path
):
    with _server("jupyterlab", workspace, tmp_path, server_options) as server:
        page = _open(browser, server, "/lab/tree/course/homework.ipynb")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / "check-button.png", clip={"x": 0, "y": 0, "width": 1280, "height": 220})
        assert _check_and_read_score(page) == cli_score
        panel = page.locator(".jp-GraderCheck")
        assert "model_1.architecture" in panel.inner_text()
        assert "Written answer to" in panel.inner_text()
        page.screenshot(path=ARTIFACTS / "check-verdicts.png")
        # The notebook's page, as grader grade draws it, behind the server's authentication
        with page.expect_popup() as popup:
            page.get_by_role("link", name="The notebook's page").click()
        assert "model_1" in popup.value.content()
        page.close()


def test_notebook_7_s_check_button_shows_the_score_grader_check_gives(
    browser: Any, workspace: Path, server_options: list[str], cli_score: str, tmp_path: Path
):
    with _server("notebook", workspace, tmp_path, server_options) as server:
        page = _open(browser, server, "/notebooks/course/homework.ipynb")
        assert _check_and_read_score(page) == cli_score
        page.close()


def test_a_check_is_cancelled_with_what_it_started_and_a_missing_spec_is_said(
    browser: Any, workspace: Path, server_options: list[str], tmp_path: Path
):
    with _server("jupyterlab", workspace, tmp_path, server_options) as server:
        page = _open(browser, server, "/lab/tree/course/homework.ipynb")
        page.get_by_role("button", name="Check", exact=True).click()
        page.locator(".jp-GraderCheck-running").wait_for(timeout=30_000)
        assert server.grader_checks_running()
        page.get_by_role("button", name="Cancel").click()
        page.get_by_text("The check was cancelled.").wait_for(timeout=60_000)
        assert server.grader_checks_running() == []
        page.close()
    missing = tmp_path / "nowhere" / "exercise.toml"
    with _server("jupyterlab", workspace, tmp_path, [*server_options, f"--GraderCheck.spec={missing}"]) as server:
        page = _open(browser, server, "/lab/tree/course/homework.ipynb")
        page.get_by_role("button", name="Check", exact=True).click()
        error = page.locator(".jp-GraderCheck-error")
        error.wait_for(timeout=CHECK_SECONDS * 1000)
        text = error.inner_text()
        assert text.startswith("The grader could not check the notebook:") and str(missing) in text, text
        page.close()
