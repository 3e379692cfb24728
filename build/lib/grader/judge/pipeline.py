"""The grading of one notebook: load, run instrumented, read facts, evaluate, check, score.

``grade_notebook`` reads top to bottom as the pipeline and never raises for
anything a submission does; ``grade_safely`` turns a fault of the grader's own
into a result too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader.errors import GraderError
from grader.ingest.notebook import InvalidSubmission, Submission, load_submission, submission_id
from grader.judge.checks import CheckResult, checks_not_run, doctored_history_warnings, run_checks
from grader.judge.claims import claim_warnings, find_claims
from grader.judge.evaluate import Evaluation, evaluate_models
from grader.judge.facts import DataFingerprints, KernelFacts, ModelFacts, read_facts
from grader.judge.results import Graded, ModelRecord, SubmissionResult, SubmissionStatus, score
from grader.protocol.fingerprints import row_fingerprints
from grader.protocol.keras_objects import modern_metric
from grader.protocol.manifest import FINALE, STEPS_PER_EXECUTION, HookSettings, preamble
from grader.run.execute import MAX_OUTPUT_BYTES, Execution, execute_notebook
from grader.run.sandbox import Isolation, Limits, Sandbox, probe_isolation
from grader.spec.datasets import load_dataset, locate_data
from grader.spec.exercise import DEFAULT_SPEC, Spec, load_spec

# Whole-notebook time limits when --timeout is not given: a full run of the
# reference notebook takes a few minutes on a 2-core CPU.
DEFAULT_TIMEOUT_SECONDS = {"quick": 300.0, "full": 1800.0}


@dataclass(frozen=True)
class GradingOptions:
    quick: bool = False
    timeout: float | None = None
    # Run notebooks faster without changing what they compute (see grader.kernel.training); False runs them as written.
    accelerate: bool = True
    # Refuse to grade when a layer of isolation is missing, instead of degrading.
    strict_sandbox: bool = False
    limits: Limits = field(default_factory=Limits)
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
    isolation: Isolation


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
    isolation = probe_isolation()
    if options.strict_sandbox and isolation.missing():
        raise GraderError(
            f"--strict-sandbox: this machine lacks {'; '.join(isolation.missing())}. Install bubblewrap "
            "(Debian: apt-get install bubblewrap) and util-linux, run as root for the uid change and cgroups, "
            "or grade without --strict-sandbox."
        )
    return GradingContext(spec, path.resolve(), fingerprints, options, isolation)


def grade_notebook(path: Path, context: GradingContext) -> Graded:
    """Grade one notebook file. Whatever the notebook does, a result comes back."""
    try:
        submission = load_submission(path)
    except InvalidSubmission as error:
        return Graded(unrunnable_result(path, "invalid", str(error), context))
    with tempfile.TemporaryDirectory(prefix="grader-") as scratch:
        execution, facts = run_instrumented(submission, context, Path(scratch))
        evaluations = (
            {}
            if context.options.quick
            else evaluate_models(list(facts.models.values()), context.data_path, context.spec.data)
        )
    checks = run_checks(context.spec, facts.models, evaluations, context.options.quick, _missing_model_hint(execution))
    findings = [
        *doctored_history_warnings(context.spec, facts.models, evaluations),
        *claim_warnings(find_claims(submission.notebook, context.spec.model_names), facts.models, evaluations),
    ]
    result = _result(submission, execution, facts, evaluations, checks, findings, context.isolation.describe())
    notebook = nbformat.writes(execution.notebook) if execution.notebook is not None else None  # type: ignore[no-untyped-call]
    return Graded(result, notebook)


def run_instrumented(submission: Submission, context: GradingContext, scratch: Path) -> tuple[Execution, KernelFacts]:
    """Run the notebook in a sandbox under ``scratch`` and read what it exported (left in ``scratch``)."""
    # TensorFlow spends CPU time on every core: the CPU limit is the wall limit on all of them.
    cpu_seconds = int(context.options.time_limit * len(os.sched_getaffinity(0))) + 60
    sandbox = Sandbox(
        context.isolation, context.options.limits, scratch, context.data_path, context.spec.path, cpu_seconds
    )
    shutil.copyfile(submission.path, sandbox.notebook)
    settings = hook_settings(context.spec, context.options, sandbox.inside_facts, sandbox.inside_data)
    execution = execute_notebook(submission.notebook, sandbox, preamble(settings), FINALE, context.options.time_limit)
    facts = read_facts(sandbox.facts_dir, context.spec.model_names, context.fingerprints, execution.student_cells)
    return execution, facts


def hook_settings(spec: Spec, options: GradingOptions, facts_dir: str, data_path: str) -> HookSettings:
    """What the instrumentation needs: where to export, what data to serve, how to run."""
    return HookSettings(
        facts_dir=facts_dir,
        data_path=data_path,
        keras_dataset=spec.data.keras_dataset,
        model_names=tuple(spec.model_names),
        quick=options.quick,
        quick_train_rows=options.quick_train_rows,
        quick_validation_rows=options.quick_validation_rows,
        steps_per_execution=STEPS_PER_EXECUTION if options.accelerate else 0,
    )


def _missing_model_hint(execution: Execution) -> str:
    if execution.outcome != "completed" and execution.message:
        return f"Grading stopped early: {execution.message}."
    if execution.cell_errors:
        return f"The first error: {execution.cell_errors[0].describe()}."
    return ""


def _result(
    submission: Submission,
    execution: Execution,
    facts: KernelFacts,
    evaluations: dict[str, Evaluation],
    checks: list[CheckResult],
    findings: list[str],
    isolation: str,
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
        warnings=(
            *(error.describe() for error in execution.cell_errors),
            *facts.warnings,
            *findings,
            *_output_warning(execution),
        ),
        models={name: _model_record(model, evaluations.get(name)) for name, model in facts.models.items()},
        error=error,
        seconds=execution.seconds,
        environment=facts.environment,
        isolation=isolation,
    )


def _model_record(facts: ModelFacts, evaluation: Evaluation | None) -> ModelRecord:
    history: dict[str, list[float]] = {}
    for fit in facts.fits:
        for metric, values in fit.history.items():
            history.setdefault(modern_metric(metric), []).extend(values)
    return ModelRecord(
        architecture=facts.architecture,
        history=history,
        epoch_times=tuple(round(seconds, 4) for fit in facts.fits for seconds in fit.epoch_times),
        test_accuracy=evaluation.accuracy if evaluation else None,
    )


def _output_warning(execution: Execution) -> tuple[str, ...]:
    if not execution.output_dropped:
        return ()
    limit = MAX_OUTPUT_BYTES // 2**20
    return (f"the notebook printed more than {limit} MiB of output; the rest was dropped (print less, e.g. verbose=0)",)


def unrunnable_result(path: Path, status: SubmissionStatus, reason: str, context: GradingContext) -> SubmissionResult:
    """A result for a file that could not be run at all: every check is an error."""
    checks = [
        check
        for model in context.spec.models
        for check in checks_not_run(model, f"Not graded: {reason}", context.options.quick)
    ]
    earned, available = score(checks)
    return SubmissionResult(submission_id(path), str(path), status, earned, available, tuple(checks), error=reason)


def grade_safely(path: Path, context: GradingContext) -> Graded:
    """``grade_notebook``, with a fault of the grader's own turned into an error result."""
    try:
        return grade_notebook(path, context)
    except Exception as error:  # a fault of the grader's must not cost the rest of the batch
        reason = f"the grader failed on this file ({type(error).__name__}: {error}); please report it"
        return Graded(unrunnable_result(path, "error", reason, context))
