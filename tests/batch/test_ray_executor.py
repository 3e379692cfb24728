"""Grading on a real Ray instance, started by these tests on this machine (loopback) and
stopped at the end: the same verdicts as the local executor, and a worker that dies."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.batch.ray_cluster import RayCluster
from grader.cli import cli
from grader.judge.pipeline import GradingOptions, grade_safely, prepare_context
from grader.judge.results import Graded
from tests.conftest import ROOT

ray = pytest.importorskip("ray", reason="needs Ray: pip install '.[ray]' (tox installs it)")
pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def local_ray():
    """A two-CPU Ray instance of this test module's own."""
    ray.init(
        num_cpus=2,
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=256 * 2**20,
    )
    # Functions of this module travel by value, so workers need not import the tests.
    ray.cloudpickle.register_pickle_by_value(__import__(__name__))
    yield
    ray.shutdown()


# Slow (38 s): the default run keeps under 15 minutes on a 2-core CI machine; the worker-death test
# below still grades on Ray there.
@pytest.mark.slow
def test_the_samples_get_the_verdicts_of_the_local_executor(local_ray, graded_samples, mnist_path, tmp_path):
    notebooks = tmp_path / "samples"
    notebooks.mkdir()
    for path in (ROOT / "submissions").glob("*.ipynb"):
        shutil.copy(path, notebooks)
    out = tmp_path / "ray"
    arguments = ["grade", str(notebooks), "--out", str(out), "--quick", "--executor", "ray", "--data", str(mnist_path)]
    outcome = CliRunner().invoke(cli, arguments)
    assert outcome.exit_code == 0, outcome.output
    on_ray = {s["id"]: s for s in json.loads((out / "results.json").read_text())["submissions"]}
    local = {s["id"]: s for s in json.loads((graded_samples / "results.json").read_text())["submissions"]}
    assert set(on_ray) == {path.stem for path in notebooks.glob("*.ipynb")}
    for sid, result in on_ray.items():
        assert result["path"] == str(notebooks / f"{sid}.ipynb")  # the driver's path, not the worker's
        assert result["checks"] == local[sid]["checks"], sid
        assert (result["status"], result["score"], result["warnings"]) == (
            local[sid]["status"],
            local[sid]["score"],
            local[sid]["warnings"],
        )
    assert (out / "submissions" / "wrong_architecture.html").is_file()
    assert (out / "notebooks" / "wrong_architecture.html").is_file()


def die_on_doomed(path: Path, context) -> Graded:
    """Kills the Ray worker that grades ``doomed.ipynb``; grades the others."""
    if path.stem == "doomed":
        os._exit(1)
    return grade_safely(path, context)


def test_a_worker_that_dies_is_retried_then_recorded_and_the_batch_goes_on(local_ray, mnist_path, tmp_path):
    context = prepare_context(GradingOptions(quick=True), data_path=mnist_path)
    doomed, broken, link = tmp_path / "doomed.ipynb", tmp_path / "broken.ipynb", tmp_path / "link.ipynb"
    doomed.write_text("{}")
    broken.write_text("{")
    link.symlink_to(broken)
    results = dict(RayCluster(grade=die_on_doomed).grade([doomed, broken, link], context))
    assert (results[doomed].result.status, results[doomed].result.fault) == ("not_graded", "grader")
    assert "died twice" in results[doomed].result.error
    assert results[broken].result.status == "invalid"
    assert results[broken].result.path == str(broken)
    # A link is refused as the local executor refuses it, not read through and shipped.
    assert results[link].result.status == "invalid" and "symbolic link" in results[link].result.error
