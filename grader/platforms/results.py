"""A result in each autograder platform's own results format. Pure: plain data in, the
platform's JSON out; the schemas they follow are kept in ``tests/platforms/schemas``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from grader.judge.results import SubmissionResult
from grader.platforms.report_text import report_markdown
from grader.spec.exercise import Spec

# PrairieLearn fails a grading whose results.json is larger than 1 MB.
PRAIRIELEARN_MAX_BYTES = 1024 * 1024
CLASSROOM50_SCHEMA = "classroom50/result/v1"


def gradescope_results(
    result: SubmissionResult, spec: Spec, seconds: float, visibility: str = "visible"
) -> dict[str, Any] | None:
    """Gradescope's ``results.json``: a test per check, the report as Markdown, a leaderboard
    of the improvement. None for a notebook the grader failed on: without a score Gradescope
    reports that the autograder failed, which is no zero and can be regraded."""
    if result.score is None:
        return None
    tests = [
        {
            "name": check.id,
            "score": check.points,
            "max_score": check.max_points,
            "status": "passed" if check.status == "pass" else "failed",
            "output": check.message,
            "visibility": visibility,
        }
        for check in result.checks
        if check.status != "skipped"
    ]
    results: dict[str, Any] = {
        "score": result.score,
        "execution_time": int(seconds),
        "output": report_markdown(result, spec.name),
        "output_format": "md",
        "test_output_format": "text",
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    board = _leaderboard(result, spec)
    if board:
        results["leaderboard"] = board
    return results


def _leaderboard(result: SubmissionResult, spec: Spec) -> list[dict[str, Any]]:
    """The improvement's measurement (its accuracy) and size, for Gradescope's leaderboard, if
    its training passed its check."""
    improvement = next((model.name for model in spec.models if model.kind == "improvement"), None)
    record = result.models.get(improvement) if improvement else None
    if improvement is None or record is None or record.test_value is None or not result.trained_fairly(improvement):
        return []
    order = "desc" if spec.data.metric.higher_is_better else "asc"
    board: list[dict[str, Any]] = [{"name": f"Test {record.metric_name}", "value": record.test_value, "order": order}]
    if record.params is not None:
        board.append({"name": "Parameters", "value": record.params, "order": "asc"})
    return board


def prairielearn_results(result: SubmissionResult, spec: Spec) -> dict[str, Any]:
    """PrairieLearn's ``results.json``: the score as a share, a test per check, the report as
    output, under 1 MB. A notebook the grader failed on is not gradable: the student loses no
    points and no attempt."""
    if result.score is None:
        return {"gradable": False, "message": result.error or "not graded", "format_errors": [result.error or ""]}
    tests = [
        {
            "name": check.id,
            "description": check.id.split(".", 1)[-1],
            "points": check.points,
            "max_points": check.max_points,
            "message": check.message,
        }
        for check in result.checks
        if check.status != "skipped"
    ]
    output = report_markdown(result, spec.name)
    while True:
        results = {
            "gradable": True,
            "score": result.score / result.max_score if result.max_score else 0.0,
            "message": f"{result.score:g} / {result.max_score:g}",
            "output": output,
            "tests": tests,
        }
        if len(json.dumps(results).encode()) <= PRAIRIELEARN_MAX_BYTES or len(output) < 1000:
            return results
        output = output[: len(output) // 2] + "\n… (cut to stay under 1 MB)"


def classroom50_result(result: SubmissionResult, environment: Mapping[str, str]) -> dict[str, Any]:
    """classroom50's ``result.json`` (``classroom50/result/v1``): whole-number scores (points
    in hundredths when a check's points are fractions); the submission's details from the
    variables classroom50 sets."""
    checks = [check for check in result.checks if check.status != "skipped"]
    scale = (
        1 if all(float(check.max_points).is_integer() and float(check.points).is_integer() for check in checks) else 100
    )
    tests = [
        {
            "test-name": check.id,
            "passed": check.status == "pass",
            "score": round(check.points * scale),
            "max-score": round(check.max_points * scale),
            "message": check.message,
        }
        for check in checks
    ]
    return {
        "schema": CLASSROOM50_SCHEMA,
        "classroom": environment.get("CLASSROOM", ""),
        "assignment": environment.get("ASSIGNMENT", ""),
        "assignment_type": environment.get("ASSIGNMENT_TYPE", "individual"),
        "owner": environment.get("OWNER", environment.get("USERNAME", "")),
        "submission": environment.get("SUBMISSION_TAG", ""),
        "commit": environment.get("COMMIT_URL", ""),
        "release": environment.get("RELEASE_URL", ""),
        "review": environment.get("REVIEW_URL", ""),
        "datetime": environment.get("DATETIME", ""),
        "score": sum(test["score"] for test in tests),
        "max-score": sum(test["max-score"] for test in tests),
        "tests": tests,
    }
