"""Shared fixtures. Tests marked ``kernel`` start a real Jupyter kernel with
TensorFlow and need the full data set, found through ``GRADER_MNIST``."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.judge.facts import DataFingerprints
from grader.judge.pipeline import GradingContext, GradingOptions
from grader.reports import RESULTS_SCHEMA
from grader.run.isolation import Isolation
from grader.spec.exercise import DEFAULT_SPEC, Spec, load_spec

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


def assert_follows_results_schema(document: Any, part: str | None = None) -> None:
    """``document`` follows the published schema of results.json, or of one of its ``$defs``
    (``submission``: what ``grader check --json`` prints); the error names the path at fault."""
    import jsonschema

    schema = json.loads(RESULTS_SCHEMA.read_text())
    if part is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{part}"}
    jsonschema.Draft202012Validator(schema).validate(document)


@pytest.fixture(scope="session")
def spec() -> Spec:
    return load_spec(DEFAULT_SPEC)


def context(spec: Spec, quick: bool) -> GradingContext:
    """A context for tests that run no kernel: no data, no isolation."""
    empty = np.zeros(0, dtype=np.uint64)
    isolation = Isolation(None, False, False, None, None)
    options = GradingOptions(quick=quick, retry_pause=0.0)
    return GradingContext(spec, Path("unused.npz"), DataFingerprints(empty, empty), options, isolation)


def exported(model: Any) -> dict[str, Any]:
    """A live Keras model's config as the kernel exports it: through JSON."""
    result: dict[str, Any] = json.loads(json.dumps(model.get_config()))
    return result


def keras_config(name: str) -> dict[str, Any]:
    """A ``model.get_config()`` saved from Keras 3 (see tests/fixtures/configs)."""
    return json.loads((FIXTURES / "configs" / f"{name}.json").read_text())


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    value = os.environ.get("GRADER_MNIST")
    if not value or not Path(value).is_file():
        pytest.skip("needs the full MNIST file: set GRADER_MNIST=/path/to/mnist.npz (.ci/run does)")
    return Path(value)


@pytest.fixture(scope="session")
def graded_samples(mnist_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reports of a quick ``grader grade --jobs 2`` of the samples and of a notebook that
    carries scripts, run once for the end-to-end and browser tests; the output folder."""
    from click.testing import CliRunner

    from grader.cli import cli

    notebooks = tmp_path_factory.mktemp("samples")
    for path in [*(ROOT / "submissions").glob("*.ipynb"), FIXTURES / "notebooks" / "script_in_markdown.ipynb"]:
        shutil.copy(path, notebooks)
    out = tmp_path_factory.mktemp("reports")
    arguments = ["grade", str(notebooks), "--out", str(out), "--quick", "--jobs", "2", "--data", str(mnist_path)]
    outcome = CliRunner().invoke(cli, arguments)
    assert outcome.exit_code == 0, outcome.output
    return out


@pytest.fixture
def no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faults are retried at once: the tests that inject them need not wait."""
    import functools

    import grader.cli.options

    monkeypatch.setattr(grader.cli.options, "GradingOptions", functools.partial(GradingOptions, retry_pause=0.0))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the golden files in tests/golden from the current rendering (then review the diff)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


# -- headless Chromium for the browser tests (Debian's package, driven by Playwright) ---------

CHROMIUM = os.environ.get("GRADER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("GRADER_TEST_ARTIFACTS") or ROOT / "test-artifacts")
# Chromium as root in a container, with nothing that reaches for the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright: pip install playwright")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"needs Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does), or set GRADER_CHROMIUM")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
