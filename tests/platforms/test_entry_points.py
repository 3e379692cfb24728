"""The autograder entry points, each run in a temporary root as its platform would run it,
the JSON they write validated against the platform's documented schema
(``tests/platforms/schemas``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from grader.cli import cli
from grader.judge.checks import CheckResult
from grader.judge.results import SubmissionResult
from grader.platforms.results import (
    PRAIRIELEARN_MAX_BYTES,
    classroom50_result,
    gradescope_results,
    prairielearn_results,
)
from grader.spec.exercise import DEFAULT_SPEC, load_spec
from tests.conftest import FIXTURES, assert_follows_results_schema

SCHEMAS = Path(__file__).parent / "schemas"
NOTEBOOKS = FIXTURES / "notebooks"
TINY_SPEC = FIXTURES / "tiny_spec.toml"
TINY_OPEN_SPEC = FIXTURES / "tiny_open_spec.toml"


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validate(document: Any, name: str) -> None:
    jsonschema.validate(document, schema(name), cls=jsonschema.Draft202012Validator)


def submit(folder: Path, notebook: Path, name: str = "mnist.ipynb") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(notebook, folder / name)


def run_entry(*arguments: str) -> Result:
    return CliRunner().invoke(cli, list(arguments))


# -- the schemas themselves ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["gradescope_results", "prairielearn_results", "classroom50_result_v1"])
def test_each_schema_is_valid_and_refuses_what_the_platform_refuses(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schema(name))
    refused = {
        "gradescope_results": {"tests": [{"name": "no score anywhere"}]},
        "prairielearn_results": {"gradable": True, "score": 1.5},
        "classroom50_result_v1": {"schema": "classroom50/result/v1", "score": 1.5},
    }[name]
    with pytest.raises(jsonschema.ValidationError):
        validate(refused, name)


# -- pure conversions, from results: no kernel ------------------------------------------------


def _result(points: tuple[float, ...] = (2, 0, 1), message: str = "ok") -> SubmissionResult:
    kinds = ("architecture", "params", "accuracy")
    checks = tuple(
        CheckResult(f"model_1.{kind}", "pass" if earned else "fail", None, None, message, float(earned), 2.0)
        for kind, earned in zip(kinds, points, strict=True)
    )
    return SubmissionResult("jdoe", "jdoe.ipynb", "graded", sum(points), 2.0 * len(points), checks)


def test_prairielearn_results_stay_under_one_megabyte_whatever_the_report() -> None:
    huge = _result(message="x" * 300_000)
    results = prairielearn_results(huge, load_spec(DEFAULT_SPEC))
    validate(results, "prairielearn_results")
    assert len(json.dumps(results).encode()) <= PRAIRIELEARN_MAX_BYTES
    assert results["output"].endswith("(cut to stay under 1 MB)")


def test_classroom50_scores_are_whole_numbers_even_for_fractional_points() -> None:
    fractional = _result(points=(1.5, 0, 2))
    document = classroom50_result(fractional, {"CLASSROOM": "ml-2026", "ASSIGNMENT": "mnist", "OWNER": "jdoe"})
    validate(document, "classroom50_result_v1")
    assert [test["score"] for test in document["tests"]] == [150, 0, 200]
    assert (document["score"], document["max-score"]) == (350, 600)
    assert (document["classroom"], document["assignment"], document["owner"]) == ("ml-2026", "mnist", "jdoe")


def test_a_result_the_grader_failed_on_is_never_a_zero_on_any_platform() -> None:
    failed = SubmissionResult("jdoe", "jdoe.ipynb", "not_graded", None, None, (), error="could not be graded")
    spec = load_spec(DEFAULT_SPEC)
    assert gradescope_results(failed, spec, 12.0) is None  # no results.json: "the autograder failed"
    pl = prairielearn_results(failed, spec)
    validate(pl, "prairielearn_results")
    assert pl["gradable"] is False and "score" not in pl


# -- the entry points, end to end in a temporary root ----------------------------------------


def test_gradescope_grades_the_submission_and_writes_schema_valid_results_with_a_leaderboard(
    mnist_path: Path, tmp_path: Path
) -> None:
    submit(tmp_path / "submission", NOTEBOOKS / "improvement_on_other_inputs.ipynb")
    (tmp_path / "submission" / "scratch.txt").write_text("notes")
    outcome = run_entry(
        "gradescope", "--root", str(tmp_path), "--spec", str(TINY_OPEN_SPEC), "--data", str(mnist_path),
        "--full", "--visibility", "after_due_date",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    validate(results, "gradescope_results")
    assert results["score"] == 10 and results["visibility"] == "after_due_date"
    assert {test["name"] for test in results["tests"]} >= {"tiny.architecture", "better.accuracy"}
    assert all(test["status"] == "passed" and test["score"] == test["max_score"] for test in results["tests"])
    assert results["output"].startswith("## Tiny MNIST exercise with an improvement, for tests: 10 / 10")
    accuracy = next(entry for entry in results["leaderboard"] if entry["name"] == "Test accuracy")
    assert accuracy["value"] > 0.9 and accuracy["order"] == "desc"


def test_prairielearn_grades_the_student_folder_and_writes_schema_valid_results(
    mnist_path: Path, tmp_path: Path
) -> None:
    submit(tmp_path / "student", NOTEBOOKS / "fakes_its_accuracy.ipynb")
    outcome = run_entry(
        "prairielearn", "--root", str(tmp_path), "--spec", str(TINY_SPEC), "--data", str(mnist_path), "--full"
    )
    assert outcome.exit_code == 0, outcome.output
    raw = (tmp_path / "results" / "results.json").read_bytes()
    assert len(raw) <= PRAIRIELEARN_MAX_BYTES
    results = json.loads(raw)
    validate(results, "prairielearn_results")
    assert (results["gradable"], results["score"], results["message"]) == (True, 1.0, "5 / 5")
    assert sum(test["max_points"] for test in results["tests"]) == 5


def test_github_grades_the_repository_writes_both_results_and_scores_each_check(
    mnist_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit(tmp_path, NOTEBOOKS / "dies_after_model_1.ipynb", "homework.ipynb")
    monkeypatch.setenv("CLASSROOM", "ml-2026")
    monkeypatch.setenv("OWNER", "jdoe")
    base = ["github", "--root", str(tmp_path), "--data", str(mnist_path), "--quick"]
    plain = run_entry(*base)
    assert plain.exit_code == 1, plain.output  # a check failed
    assert "model_1.architecture" in plain.output  # the table is printed
    result = json.loads((tmp_path / "grader-results.json").read_text())
    assert_follows_results_schema(result, "submission")
    assert result["status"] == "error" and result["score"] is not None
    assert run_entry("github", "--root", str(tmp_path), "--check", "model_1.architecture").exit_code == 0
    failed = run_entry("github", "--root", str(tmp_path), "--check", "model_3.params")
    assert failed.exit_code == 1 and "model_3.params: error" in failed.output
    unknown = run_entry("github", "--root", str(tmp_path), "--check", "model_9.params")
    assert unknown.exit_code == 3 and "no check 'model_9.params'" in unknown.output
    classroom50 = run_entry(*base, "--classroom50")
    assert classroom50.exit_code == 0, classroom50.output  # graded: classroom50's contract
    document = json.loads((tmp_path / "result.json").read_text())
    validate(document, "classroom50_result_v1")
    assert document["classroom"] == "ml-2026" and 0 < document["score"] < document["max-score"]


def test_github_check_without_a_graded_result_says_to_grade_first(tmp_path: Path) -> None:
    outcome = run_entry("github", "--root", str(tmp_path), "--check", "model_1.architecture")
    assert outcome.exit_code == 3 and "grade first" in outcome.output


@pytest.mark.slow  # every platform's runner once more (each is graded by default above)
def test_a_fault_of_the_grader_is_not_graded_on_every_platform(
    mnist_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_retry_pause: None
) -> None:
    monkeypatch.setenv("GRADER_INJECT_FAULT", "kernel-start")
    data = ["--data", str(mnist_path)]
    submit(tmp_path / "gs" / "submission", NOTEBOOKS / "fakes_its_accuracy.ipynb")
    gradescope = run_entry("gradescope", "--root", str(tmp_path / "gs"), *data)
    assert gradescope.exit_code == 2 and not (tmp_path / "gs" / "results" / "results.json").exists()
    assert (tmp_path / "gs" / "results").is_dir()  # its logs, for the instructor
    submit(tmp_path / "pl" / "student", NOTEBOOKS / "fakes_its_accuracy.ipynb")
    assert run_entry("prairielearn", "--root", str(tmp_path / "pl"), *data).exit_code == 0
    results = json.loads((tmp_path / "pl" / "results" / "results.json").read_text())
    validate(results, "prairielearn_results")
    assert results["gradable"] is False
    submit(tmp_path / "gh", NOTEBOOKS / "fakes_its_accuracy.ipynb")
    assert run_entry("github", "--root", str(tmp_path / "gh"), "--classroom50", *data).exit_code == 3
    assert not (tmp_path / "gh" / "result.json").exists()
    assert run_entry("github", "--root", str(tmp_path / "gh"), "--check", "model_1.architecture").exit_code == 3


def test_an_empty_submission_is_the_students_invalid_result_with_what_to_do(mnist_path: Path, tmp_path: Path) -> None:
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "mnist.py").write_text("print(1)")
    outcome = run_entry("gradescope", "--root", str(tmp_path), "--data", str(mnist_path))
    assert outcome.exit_code == 0, outcome.output
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    validate(results, "gradescope_results")
    assert results["score"] == 0 and "no .ipynb file was submitted" in results["output"]
