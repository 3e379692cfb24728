"""``grader validate``: an exercise proved end to end before students get it. Its data files
are present and match their hashes; every model has its accuracy range; the solution grades
full marks in full mode; the handout runs to the end in quick mode and scores nothing on any
model check, each check saying what to build."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat

from grader.errors import GraderError
from grader.judge.answers import asked_questions, find_answers
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
    findings = [Finding("data", True, f"{full.data_path}{hashed}: {rows}"), ranges, *questions_findings(spec)]
    for what, path in (("solution", spec.solution), ("handout", spec.handout)):
        if path is None or not path.is_file():
            findings.append(Finding(what, False, f"the spec names no {what} file, or it is missing ({path})"))
    if ranges.passed and spec.solution is not None and spec.solution.is_file():
        findings.append(solution_finding(grade(spec.solution, full).result))
    if spec.handout is not None and spec.handout.is_file():
        quick = replace(full, options=GradingOptions(quick=True, backend=backend.name))
        findings.append(handout_finding(grade(spec.handout, quick).result, spec))
    return tuple(findings)


def questions_findings(spec: Spec) -> list[Finding]:
    """The written questions: each asked by the handout (else no answer can be found after it),
    answered in the solution, and each rubric item with an ``id`` of its own (else editing its
    title while grading makes it a new item, and the marks given stay on the old one)."""
    if not spec.questions:
        return []
    unnamed = [
        f"{entry.get('id', '?')}: {item.get('title', '?')!r}"
        for entry in tomllib.loads(spec.path.read_text(encoding="utf-8")).get("questions", [])
        for item in entry.get("rubric", [])
        if "id" not in item
    ]
    rubric = Finding(
        "rubric ids",
        not unnamed,
        f"give these rubric items an id of their own, so that a title edited while grading keeps its marks: "
        f"{'; '.join(unnamed)}"
        if unnamed
        else "every rubric item has an id of its own",
    )
    findings = [rubric]
    for what, path in (("handout", spec.handout), ("solution", spec.solution)):
        if path is None or not path.is_file():
            continue
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        if what == "handout":
            missing = [q.id for q in spec.questions if q.id not in asked_questions(notebook, spec.questions)]
            detail = "asks every question" if not missing else f"does not ask {missing} in any of their wordings"
            findings.append(Finding("questions in the handout", not missing, detail))
        else:
            handout = nbformat.read(spec.handout, as_version=4) if spec.handout and spec.handout.is_file() else None  # type: ignore[no-untyped-call]
            unanswered = [a.question for a in find_answers(notebook, spec.questions, handout) if not a.answered]
            detail = "answers every question" if not unanswered else f"has no answer found for {unanswered}"
            findings.append(Finding("answers in the solution", not unanswered, detail))
    return findings


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
