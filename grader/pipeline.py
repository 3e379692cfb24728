"""The grading pipeline: load, run instrumented, read facts, evaluate, check, score.

``grade_notebook`` grades one file and never raises for anything a submission
does; ``grade_batch`` grades many and reports each result as it is ready.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from grader import __version__
from grader.checks import CheckResult, checks_not_run, run_checks
from grader.data import load_dataset, locate_data
from grader.evaluate import evaluate_models
from grader.execute import Execution, execute_notebook
from grader.facts import DataFingerprints, KernelFacts, read_facts
from grader.fingerprint import row_fingerprints
from grader.results import GradeRun, SubmissionResult, SubmissionStatus, score
from grader.spec import DEFAULT_SPEC, Spec, load_spec
from grader.submission import InvalidSubmission, Submission, load_submission, submission_id

# Whole-notebook time limits when --timeout is not given: a full run of the
# reference notebook takes a few minutes on a 2-core CPU.
DEFAULT_TIMEOUT_SECONDS = {"quick": 300.0, "full": 1800.0}
FINALE = "__import__('grader.kernel_hooks', fromlist=['finish']).finish()"


@dataclass(frozen=True)
class GradingOptions:
    quick: bool = False
    timeout: float | None = None
    # Quick mode trains one epoch on this many rows (validation on fewer).
    quick_train_rows: int = 2048
    quick_validation_rows: int = 1000

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    @property
    def time_limit(self) -> float:
        return self.timeout if self.timeout is not None else DEFAULT_TIMEOUT_SECONDS[self.mode]


@dataclass(frozen=True)
class GradingContext:
    """Everything a grading needs besides the submission, prepared once per run."""

    spec: Spec
    data_path: Path
    fingerprints: DataFingerprints
    options: GradingOptions


def prepare_context(
    options: GradingOptions, spec_path: Path = DEFAULT_SPEC, data_path: Path | None = None
) -> GradingContext:
    """Load the spec and the data; raises ``GraderError`` subclasses with what to do."""
    spec = load_spec(spec_path)
    if not options.quick:
        spec.require_accuracy_ranges()
    path = locate_data(spec.data, data_path)
    dataset = load_dataset(path, spec.data)
    fingerprints = DataFingerprints(row_fingerprints(dataset.x_train), row_fingerprints(dataset.x_test))
    return GradingContext(spec, path.resolve(), fingerprints, options)


def grade_notebook(path: Path, context: GradingContext) -> SubmissionResult:
    """Grade one notebook file. Whatever the notebook does, a result comes back."""
    try:
        submission = load_submission(path)
    except InvalidSubmission as error:
        return unrunnable_result(path, "invalid", str(error), context)
    with tempfile.TemporaryDirectory(prefix="grader-") as scratch:
        workdir, facts_dir = _prepare_scratch(Path(scratch), submission)
        execution = execute_notebook(
            submission.notebook, workdir, _preamble(context, facts_dir), FINALE, context.options.time_limit
        )
        facts = read_facts(
            facts_dir, [m.name for m in context.spec.models], context.fingerprints, execution.student_cells
        )
        evaluations = (
            {}
            if context.options.quick
            else evaluate_models(list(facts.models.values()), context.data_path, context.spec.data)
        )
    checks = run_checks(context.spec, facts.models, evaluations, context.options.quick, _missing_model_hint(execution))
    return _result(submission, execution, facts, checks)


def _prepare_scratch(scratch: Path, submission: Submission) -> tuple[Path, Path]:
    workdir, facts_dir = scratch / "work", scratch / "facts"
    workdir.mkdir()
    facts_dir.mkdir()
    shutil.copyfile(submission.path, workdir / "submission.ipynb")
    return workdir, facts_dir


def _preamble(context: GradingContext, facts_dir: Path) -> str:
    settings = {
        "facts_dir": str(facts_dir),
        "data_path": str(context.data_path),
        "keras_dataset": context.spec.data.keras_dataset,
        "model_names": [model.name for model in context.spec.models],
        "quick": context.options.quick,
        "quick_train_rows": context.options.quick_train_rows,
        "quick_validation_rows": context.options.quick_validation_rows,
    }
    return f"__import__('grader.kernel_hooks', fromlist=['install']).install({settings!r})"


def _missing_model_hint(execution: Execution) -> str:
    if execution.outcome != "completed" and execution.message:
        return f"Grading stopped early: {execution.message}."
    if execution.cell_errors:
        return f"The first error: {execution.cell_errors[0].describe()}."
    return ""


def _result(
    submission: Submission, execution: Execution, facts: KernelFacts, checks: list[CheckResult]
) -> SubmissionResult:
    status: SubmissionStatus = "graded"
    error = None
    if execution.outcome == "timeout":
        status, error = "timeout", execution.message
    elif execution.outcome != "completed":
        status, error = "error", execution.message
    elif not facts.environment:
        status, error = "error", facts.warnings[0] if facts.warnings else "the notebook could not be run"
    earned, available = score(checks)
    return SubmissionResult(
        id=submission.id,
        path=str(submission.path),
        status=status,
        score=earned,
        max_score=available,
        checks=tuple(checks),
        warnings=tuple(e.describe() for e in execution.cell_errors) + facts.warnings,
        epoch_times={
            name: [round(t, 4) for fit in m.fits for t in fit.epoch_times] for name, m in facts.models.items()
        },
        error=error,
        seconds=execution.seconds,
        environment=facts.environment,
    )


def unrunnable_result(path: Path, status: SubmissionStatus, reason: str, context: GradingContext) -> SubmissionResult:
    """A result for a file that could not be run at all: every check is an error."""
    checks = [
        check
        for model in context.spec.models
        for check in checks_not_run(model, f"Not graded: {reason}", context.options.quick)
    ]
    earned, available = score(checks)
    return SubmissionResult(submission_id(path), str(path), status, earned, available, tuple(checks), error=reason)


def grade_batch(
    paths: Iterable[Path],
    context: GradingContext,
    on_start: Callable[[Path], None] = lambda path: None,
    on_result: Callable[[SubmissionResult], None] = lambda result: None,
) -> GradeRun:
    """Grade every path, one result each, in order; a duplicate id is an invalid result."""
    results: list[SubmissionResult] = []
    seen: dict[str, Path] = {}
    for path in paths:
        on_start(path)
        sid = submission_id(path)
        if sid in seen:
            result = unrunnable_result(
                path, "invalid", f"{seen[sid]} has the same id {sid!r}; rename one of the files", context
            )
        else:
            seen[sid] = path
            try:
                result = grade_notebook(path, context)
            except Exception as error:  # a fault of the grader's must not cost the rest of the batch
                reason = f"the grader failed on this file ({type(error).__name__}: {error}); please report it"
                result = unrunnable_result(path, "error", reason, context)
        results.append(result)
        on_result(result)
    return make_run(context, results)


def make_run(context: GradingContext, results: list[SubmissionResult]) -> GradeRun:
    return GradeRun(__version__, "quick" if context.options.quick else "full", context.spec.name, tuple(results))
