"""Executors: results do not depend on where or how many at once; a dead worker costs
no other submission its result. No kernel: the notebooks here are invalid files, graded
in milliseconds, or a stand-in grading function."""

import os
from pathlib import Path

import pytest

from grader.batch.executors import InProcess, LocalProcesses, core_slices, default_jobs
from grader.judge.pipeline import grade_safely
from grader.judge.results import Graded
from grader.reports.pages import draw_parts
from tests.conftest import context


def test_cores_are_split_evenly_and_shared_when_workers_outnumber_them():
    assert core_slices([0, 1, 2, 3], 2) == [[0, 1], [2, 3]]
    assert core_slices([0, 1, 2], 2) == [[0], [1, 2]]
    assert core_slices([0, 1], 3) == [[0], [1], [0]]


def test_default_jobs_follow_cores_and_memory(monkeypatch):
    import grader.batch.executors

    gib = 2**30 // 4096
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 24 * gib}
    monkeypatch.setattr(grader.batch.executors.os, "sysconf", lambda name: pages[name])
    monkeypatch.setattr(grader.batch.executors.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert default_jobs() == 6  # 24 GiB: one kernel per 4 GiB
    pages["SC_PHYS_PAGES"] = 128 * gib
    assert default_jobs() == 16  # one per core
    monkeypatch.setattr(grader.batch.executors.os, "sched_getaffinity", lambda pid: {0})
    assert default_jobs() == 1


def with_doomed(folder: Path) -> tuple[Path, list[Path]]:
    """``doomed.ipynb``, whose worker dies, and the invalid notebooks of ``notebooks``."""
    doomed = folder / "doomed.ipynb"
    doomed.write_text("{}")
    return doomed, notebooks(folder)


def notebooks(folder: Path) -> list[Path]:
    paths = []
    for name, text in [("empty", ""), ("list", "[]"), ("broken", "{"), ("text", "hello"), ("null", "null")]:
        path = folder / f"{name}.ipynb"
        path.write_text(text)
        paths.append(path)
    return paths


def test_worker_processes_give_the_results_of_one_process(spec, tmp_path):
    paths = notebooks(tmp_path)
    grading = context(spec, quick=True)
    alone = dict(InProcess().grade(paths, grading))
    together = dict(LocalProcesses(2).grade(paths, grading))
    assert together == alone
    assert {graded.result.status for graded in alone.values()} == {"invalid"}
    # The workers draw the pages' slow parts as this process would have.
    drawn = dict(LocalProcesses(2, draw=draw_parts).grade(paths, grading))
    assert drawn == {path: draw_parts(graded, spec) for path, graded in alone.items()}
    assert all(graded.drawings is not None for graded in drawn.values())


def die_on_doomed(path: Path, grading, more_to_come: bool = False) -> Graded:
    """Kills the worker process that grades ``doomed.ipynb``, as a crash of the grader would."""
    if path.stem == "doomed":
        os._exit(1)
    return grade_safely(path, grading, more_to_come)


@pytest.mark.timeout(120)
@pytest.mark.slow  # the worker pool's retries (a worker killed twice is tested by default)
def test_a_dead_worker_is_retried_once_then_recorded_and_the_others_are_graded(spec, tmp_path):
    doomed, paths = with_doomed(tmp_path)
    results = dict(LocalProcesses(2, grade=die_on_doomed).grade([doomed, *paths], context(spec, quick=True)))
    assert set(results) == {doomed, *paths}
    assert (results[doomed].result.status, results[doomed].result.fault) == ("not_graded", "grader")
    assert "died twice" in results[doomed].result.error and results[doomed].result.score is None
    assert {results[path].result.status for path in paths} == {"invalid"}


def crash_drawing_doomed(graded: Graded, spec) -> Graded:
    """Kills the worker that draws ``doomed.ipynb``'s pages, as a crash in nbconvert would."""
    if Path(graded.result.path).stem == "doomed":
        os._exit(1)
    return draw_parts(graded, spec)


@pytest.mark.timeout(120)
def test_a_crash_while_drawing_costs_no_grade_the_retry_leaves_the_drawing_to_the_reports(spec, tmp_path):
    doomed, paths = with_doomed(tmp_path)
    results = dict(LocalProcesses(2, draw=crash_drawing_doomed).grade([doomed, *paths], context(spec, quick=True)))
    assert {graded.result.status for graded in results.values()} == {"invalid"}
    assert results[doomed].drawings is None  # graded again, not drawn: the reports draw its pages


def test_a_shipped_context_unpacks_once_per_node_to_the_same_spec_and_data_and_probes_its_own_sandbox(
    spec, tmp_path, monkeypatch
):
    import dataclasses
    import json
    import subprocess
    import tempfile

    from grader.batch import ray_cluster
    from grader.batch.ray_cluster import ShippedContext
    from grader.run.isolation import Isolation
    from grader.run.probe import probe_isolation
    from grader.run.sandbox import OWNER_FILE, this_process

    # A sandbox that a worker killed on this node left: the node's next worker sweeps it first.
    node_temp = tmp_path / "node"
    stale = node_temp / "grader-left-by-a-killed-worker"
    stale.mkdir(parents=True)
    stale.chmod(0o755)
    ended = subprocess.Popen(["true"])
    ended.wait()
    owner = {**this_process(), "pid": ended.pid, "started": "0", "uid": None, "cgroups": []}
    (stale / OWNER_FILE).write_text(json.dumps(owner))
    (stale / OWNER_FILE).chmod(0o644)
    monkeypatch.setattr(tempfile, "tempdir", str(node_temp))
    ray_cluster._worker_isolation.cache_clear()

    data = tmp_path / "mnist.npz"
    data.write_bytes(b"arrays")
    driver = dataclasses.replace(
        context(spec, quick=True), data_path=data, isolation=Isolation("/nowhere/bwrap", True, True, None, None)
    )
    worker = tmp_path / "worker"
    worker.mkdir()
    unpacked = ShippedContext.of(driver).unpack(worker)
    assert unpacked.data_path.read_bytes() == b"arrays" and unpacked.data_path.is_relative_to(worker)
    assert unpacked.spec.digest == spec.digest and unpacked.spec.path.is_relative_to(worker)
    assert unpacked.spec.calibration.models.keys() == spec.calibration.models.keys()
    assert unpacked.isolation == probe_isolation()
    assert not stale.exists()
    assert unpacked.options == driver.options
    # The node's next task finds them unpacked: nothing is written again.
    written = unpacked.data_path.stat().st_mtime_ns
    again = ShippedContext.of(driver).unpack(worker)
    assert again.data_path == unpacked.data_path and again.data_path.stat().st_mtime_ns == written
    assert [path.name for path in worker.iterdir()] == [unpacked.data_path.parent.name]
