"""Faults of the grader's own, caused for real or injected (GRADER_INJECT_FAULT): each is
retried, never scored, never stored, blank in the gradebook, logged, and graded normally on
the next run. And the grader's own kernel, whatever kernel a notebook names."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from grader.cli import cli
from tests.conftest import FIXTURES, ROOT
from tests.judge.test_grading_kernel import GOLDEN_RESULTS, verdict_fields

pytestmark = pytest.mark.kernel


def grade(folder: Path, out: Path, mnist_path: Path, *extra: str) -> tuple[int, dict[str, dict]]:
    arguments = ["grade", str(folder), "--out", str(out), "--quick", "--data", str(mnist_path), *extra]
    outcome = CliRunner().invoke(cli, arguments)
    results = json.loads((out / "results.json").read_text())
    return outcome.exit_code, {result["id"]: result for result in results["submissions"]}


def gradebook(out: Path) -> dict[str, str]:
    rows = list(csv.reader((out / "gradebook.csv").read_text().splitlines()))
    return {row[3]: row[5] for row in rows[2:]}  # after the header and Points Possible


def test_an_injected_kernel_start_fault_exits_2_is_blank_and_graded_on_the_next_run(
    mnist_path, tmp_path, monkeypatch, no_retry_pause
):
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copy(ROOT / "submissions" / "correct_other_spellings.ipynb", folder / "alice.ipynb")
    out = tmp_path / "out"

    monkeypatch.setenv("GRADER_INJECT_FAULT", "kernel-start")
    code, results = grade(folder, out, mnist_path)
    alice = results["alice"]
    assert code == 2
    assert (alice["status"], alice["fault"], alice["score"], alice["attempts"]) == ("not_graded", "grader", None, 3)
    assert "could not be graded because of a fault of the grader, not of the notebook" in alice["error"]
    assert not alice["checks"]
    assert gradebook(out) == {"alice": ""}
    assert "GRADER_INJECT_FAULT: the kernel exits at start" in (out / alice["logs"] / "kernel.log").read_text()
    # A student's check meets the same fault: exit 3, never a failing grade
    checked = CliRunner().invoke(cli, ["check", str(folder / "alice.ipynb"), "--data", str(mnist_path)])
    assert checked.exit_code == 3, checked.output
    assert "fault of the grader" in checked.output

    monkeypatch.delenv("GRADER_INJECT_FAULT")
    code, results = grade(folder, out, mnist_path)  # no --force
    assert code == 0
    assert (results["alice"]["status"], results["alice"]["score"]) == ("graded", 15)
    assert gradebook(out) == {"alice": ""}  # its written answers are not graded yet
    grade(folder, out, mnist_path, "--partial")
    assert gradebook(out) == {"alice": "15"}


def test_a_worker_killed_twice_is_not_graded_and_graded_on_the_next_run(mnist_path, tmp_path, monkeypatch):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "bob.ipynb").write_text("{}")  # graded in no time once the workers live
    out = tmp_path / "out"
    monkeypatch.setenv("GRADER_INJECT_FAULT", "worker")
    code, results = grade(folder, out, mnist_path, "--jobs", "2")
    assert code == 2
    assert results["bob"]["status"] == "not_graded" and "died twice" in results["bob"]["error"]
    monkeypatch.delenv("GRADER_INJECT_FAULT")
    code, results = grade(folder, out, mnist_path, "--jobs", "2")
    assert (code, results["bob"]["status"]) == (0, "invalid")  # graded again, without --force


@pytest.mark.slow  # a full grade, three times: the kernel-start fault above follows the same path in the default run
def test_an_evaluator_fault_in_a_full_grade_is_retried_logged_and_not_stored(mnist_path, tmp_path, monkeypatch):
    from grader.batch.grade import grade_batch
    from grader.batch.store import ResultStore
    from grader.judge.pipeline import GradingOptions, prepare_context

    options = GradingOptions(quick=False, timeout=240, retry_pause=0.0)
    context = prepare_context(options, FIXTURES / "tiny_spec.toml", mnist_path)
    notebook = FIXTURES / "notebooks" / "fakes_its_accuracy.ipynb"
    store = ResultStore(tmp_path)
    monkeypatch.setenv("GRADER_INJECT_FAULT", "evaluator")
    failed = grade_batch([notebook], context, store, logs_out=tmp_path).submissions[0]
    assert (failed.status, failed.attempts, failed.score) == ("not_graded", 3, None)
    assert set(os.listdir(tmp_path / failed.logs)) == {"kernel.log", "instrumentation.log", "evaluator.log"}
    monkeypatch.delenv("GRADER_INJECT_FAULT")
    graded = grade_batch([notebook], context, store).submissions[0]
    assert (graded.status, graded.attempts) == ("graded", 1) and graded.score is not None


@pytest.mark.slow  # a whole notebook graded for its kernelspec alone
def test_a_notebook_naming_a_kernel_of_another_machine_grades_to_full_marks(mnist_path):
    from grader.judge.pipeline import GradingOptions, grade_safely, prepare_context

    context = prepare_context(GradingOptions(quick=True), data_path=mnist_path)
    result = grade_safely(FIXTURES / "notebooks" / "foreign_kernel.ipynb", context).result
    assert (result.status, result.score, result.max_score) == ("graded", 15, 15)
    assert result.kernel_asked == "dl_env"
    assert any("names the kernel 'dl_env'" in warning for warning in result.warnings)


def test_without_bubblewrap_as_root_the_samples_grade_as_with_it(mnist_path, tmp_path):
    """Root, no bwrap on PATH (a Docker image, an autograder container): the uid change cannot
    work where nobody cannot read the interpreter, so a probe leaves it out with its reason."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for program in Path("/usr/bin").iterdir():
        if program.name != "bwrap":
            (tools / program.name).symlink_to(program)
    folder = tmp_path / "samples"
    folder.mkdir()
    # Two of the samples (the others take as long and test nothing more here): one graded, one crashing.
    for name in ("correct_other_spellings", "crashes"):
        shutil.copy(ROOT / "submissions" / f"{name}.ipynb", folder)
    out = tmp_path / "out"
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{tools}"}
    completed = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out), "--quick", "--data", str(mnist_path)],
        capture_output=True, text=True, env=environment, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    run = json.loads((out / "results.json").read_text())
    golden = json.loads(GOLDEN_RESULTS.read_text())
    assert verdict_fields(run) == {name: golden[name] for name in ("correct_other_spellings", "crashes")}
    isolation = run["submissions"][0]["isolation"]
    assert "bwrap is not installed" in isolation
    interpreter = Path(sys.executable).resolve()
    hidden = any(folder.stat().st_mode & 0o005 == 0 for folder in interpreter.parents)  # a folder others cannot enter
    if os.geteuid() == 0 and hidden:
        assert "a change to an unprivileged uid: an unprivileged uid cannot run the grader's Python here" in isolation


def test_a_kernel_killed_for_memory_is_the_notebooks_fault_judged_by_which_process_died(
    mnist_path, tmp_path, monkeypatch
):
    """The machine's out-of-memory killer struck (its counter rose) while the notebook ran: when
    it was the notebook's kernel that was killed (SIGKILL), the notebook ran out of memory; when
    the kernel ended otherwise, the counter, host-wide, says nothing of it."""
    from grader.judge.pipeline import GradingOptions, grade_safely, prepare_context
    from grader.run import execute

    context = prepare_context(GradingOptions(quick=True, retry_pause=0.0), data_path=mnist_path)
    kills = iter(range(100))
    monkeypatch.setattr(execute, "machine_oom_kills", lambda: next(kills))
    for name, death, message in (
        ("exits", "os._exit(1)", "the kernel died while running cell 1 (import os os._exit(1)): the process exited"),
        (
            "killed",
            "os.kill(os.getpid(), 9)",
            "ran out of memory while running cell 1 (import os os.kill(os.getpid(), 9)):"
            " the machine's out-of-memory killer stopped its kernel",
        ),
    ):
        notebook = tmp_path / f"{name}.ipynb"
        cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell(f"import os\n{death}")]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), notebook)
        result = grade_safely(notebook, context).result
        assert (result.status, result.fault, result.attempts) == ("error", "submission", 1), result.error
        assert message in result.error
