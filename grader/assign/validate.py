"""``grader validate``: an exercise proved end to end before students get it. Its data files
are present and match their hashes; every model has its accuracy range; the solution grades
full marks in full mode; the handout runs to the end in quick mode and scores nothing on any
model check, each check saying what to build."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from grader.errors import GraderError
from grader.judge.pipeline import GradingContext, GradingOptions, context_for, grade_safely
from grader.judge.results import Graded, SubmissionResult
from grader.run.backends import Backend
from grader.spec.exercise import Spec, load_spec

Grade = Callable[[Path, GradingContext], Graded]


@dataclass(frozen=True)
class Finding:
    """One thing ``grader validate`` checked: what, whether it holds, and why not."""

    what: str
    passed: bool
    detail: str


def validate_exercise(
    spec_path: Path, backend: Backend, data_path: Path | None = None, grade: Grade = grade_safely
) -> tuple[Finding, ...]:
    """What holds of the exercise of ``spec_path`` and what does not; a finding that stops the
    rest (no data, no solution) comes last."""
    spec = load_spec(spec_path, backend.key)
    try:  # one context for both gradings: the data located, checked and read once
        full = context_for(spec, GradingOptions(backend=backend.name), backend, data_path)
    except GraderError as error:
        return (Finding("data", False, str(error)),)
    hashed = " (its sha256 as the spec says)" if spec.data.file and spec.data.file_sha256 else ""
    rows = f"{len(full.fingerprints.train):,} training and {len(full.fingerprints.test):,} test rows"
    ranges = _accuracy_ranges(spec)
    findings = [Finding("data", True, f"{full.data_path}{hashed}: {rows}"), ranges]
    for what, path in (("solution", spec.solution), ("handout", spec.handout)):
        if path is None or not path.is_file():
            findings.append(Finding(what, False, f"the spec names no {what} file, or it is missing ({path})"))
    if ranges.passed and spec.solution is not None and spec.solution.is_file():
        findings.append(solution_finding(grade(spec.solution, full).result))
    if spec.handout is not None and spec.handout.is_file():
        quick = replace(full, options=GradingOptions(quick=True, backend=backend.name))
        findings.append(handout_finding(grade(spec.handout, quick).result, spec))
    return tuple(findings)


def _accuracy_ranges(spec: Spec) -> Finding:
    try:
        spec.require_accuracy_ranges()
    except GraderError as error:
        return Finding("calibration", False, str(error))
    ranges = [
        f"{model.name} {model.accuracy.min:.4f}–{model.accuracy.max:.4f}" for model in spec.models if model.accuracy
    ]
    return Finding("calibration", True, f"accepted {spec.data.metric.name}: " + ", ".join(ranges))


def solution_finding(result: SubmissionResult) -> Finding:
    """The solution must grade full marks in full mode."""
    if result.status != "graded" or result.score is None:
        return Finding("solution", False, f"it was not graded ({result.status}): {result.error}")
    failed = [f"{check.id}: {check.message}" for check in result.checks if check.points < check.max_points]
    if failed:
        return Finding("solution", False, f"{result.score:g} of {result.max_score:g}; " + "; ".join(failed))
    return Finding("solution", True, f"full marks in full mode ({result.score:g} of {result.max_score:g})")


def handout_finding(result: SubmissionResult, spec: Spec) -> Finding:
    """The handout must run to the end in quick mode, score nothing on any model check, and
    each failing check must say what to build: name its model, or, for an open improvement
    (found under any name), ask for an improvement."""
    if result.status != "graded":
        return Finding("handout", False, f"it did not run to the end in quick mode ({result.status}): {result.error}")
    asks_for = {model.name: "improvement" if model.kind == "improvement" else model.name for model in spec.models}
    scored = [f"{check.id} gives {check.points:g}" for check in result.checks if check.points > 0]
    failing = [check for check in result.checks if check.status not in ("pass", "skipped")]
    unhelpful = [
        check.id for check in failing if asks_for.get(model := check.id.split(".")[0], model) not in check.message
    ]
    if scored or unhelpful:
        problems = [*scored, *(f"{check} fails without saying what to build" for check in unhelpful)]
        return Finding("handout", False, "; ".join(problems))
    detail = f"runs in quick mode and scores 0; {len(failing)} checks fail, each saying what to build"
    return Finding("handout", True, detail)
