"""The grading of one notebook: load, run instrumented, read facts, evaluate, check, score.

``grade_notebook`` reads top to bottom as the pipeline and never raises for
anything a submission does; ``grade_safely`` turns a fault of the grader's own
into a result too.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat

from grader.errors import GraderError, GraderFault, UntrustedDataError
from grader.evaluation.evaluate import (
    Evaluation,
    EvaluatorRecipe,
    evaluate_models,
    near_copies_without_a_model,
    preprocessing_warnings,
)
from grader.evaluation.limits import RebuildBounds
from grader.evaluation.untrusted import read_tail
from grader.ingest.notebook import InvalidSubmission, Submission, load_submission, submission_id
from grader.judge.answers import find_answers
from grader.judge.checks import (
    CheckResult,
    above_the_band_warnings,
    checks_not_run,
    doctored_history_warnings,
    run_checks,
)
from grader.judge.claims import claim_warnings, find_claims
from grader.judge.deadline import Deadline, OutOfTime
from grader.judge.facts import DataFingerprints, KernelFacts, ModelFacts, read_facts
from grader.judge.matching import assign_models
from grader.judge.results import Graded, ModelRecord, SubmissionResult, SubmissionStatus, encodable_result, score
from grader.protocol.fingerprints import row_fingerprints
from grader.protocol.keras_objects import modern_metric
from grader.protocol.manifest import HookSettings
from grader.protocol.text import encodable, name_text
from grader.run.backends import Backend, choose_backend, gpu_count
from grader.run.environment import installed_versions
from grader.run.execute import GRADER_KERNEL, MAX_OUTPUT_BYTES, Execution
from grader.run.isolation import Isolation, Limits
from grader.run.probe import probe_isolation
from grader.run.progress import report
from grader.run.sandbox import Sandbox
from grader.run.warm import KERNELS, KernelRecipe
from grader.spec.architecture import Architecture
from grader.spec.datasets import file_digest, load_dataset, load_private_test, locate_data
from grader.spec.exercise import DEFAULT_SPEC, Metric, Spec, load_spec
from grader.spec.layers import Layer

# Whole-notebook time limits when --timeout is not given: a full run of the
# reference notebook takes a few minutes on a 2-core CPU.
DEFAULT_TIMEOUT_SECONDS = {"quick": 300.0, "full": 1800.0}
# A fault of the grader's own is retried: a fresh kernel at once, then once more after a pause.
GRADING_ATTEMPTS = 3
# Warnings kept per result; beyond, they are counted.
MAX_WARNINGS = 100
# Each log kept for diagnosis is cut to its last this many characters.
MAX_LOG_CHARS = 2**20
# The least time the grader gives itself to read a notebook's text (answers, claims), even
# when the code used the whole budget: an ordinary notebook's takes milliseconds.
MIN_TEXT_SECONDS = 2.0
OUT_OF_TIME = (
    "the grader stopped reading {what}: the notebook's text took longer to read than its time limit "
    "(--timeout) left; the code is graded, the text is not"
)
NOT_YOUR_FAULT = (
    "This notebook could not be graded because of a fault of the grader, not of the notebook: {reason}. "
    "It has no score; it is graded again on the next run."
)


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
    # Seconds before the last retry of a grading that failed through a fault of the grader's.
    retry_pause: float = 5.0
    # Keep the logs of every grading, not only of those the grader failed.
    keep_logs: bool = False
    # The Keras backend to train and evaluate on (tensorflow, jax, torch); None: see ``choose_backend``
    backend: str | None = None
    # A private test set (``x_test``, ``y_test``) the evaluator measures on, instead of the spec's
    # ``[data] private_test`` or the data set's own test rows; never placed in a notebook's sandbox
    private_test: Path | None = None

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
    # What else a verdict depends on: the data set's bytes and the Keras stack's versions.
    data_digest: str = ""
    software: dict[str, str] = field(default_factory=dict)
    backend: Backend = field(default_factory=lambda: Backend("tensorflow"))
    # What every kernel and evaluator runs with to use the backend (and share a GPU)
    backend_environment: dict[str, str] = field(default_factory=dict)
    # The sentences most of the class's notebooks hold: the handout's, never an answer
    # (``grader.judge.answers.class_sentences``; empty for a notebook graded alone)
    class_text: frozenset[str] = frozenset()
    # The private test set the evaluator measures on, checked (None: the data set's test rows)
    private_test: Path | None = None


def prepare_context(
    options: GradingOptions,
    spec_path: Path = DEFAULT_SPEC,
    data_path: Path | None = None,
    jobs: int = 1,
    start_kernel: bool = False,
) -> GradingContext:
    """Choose the backend, load the spec and the data; raises ``GraderError`` subclasses with
    what to do. ``jobs`` notebooks at once share the GPUs, if any. ``start_kernel``: this
    process grades next, so its first kernel starts while the data set is read."""
    backend = choose_backend(options.backend)
    spec = load_spec(spec_path, backend.key)
    if not options.quick:
        spec.require_accuracy_ranges()
    return context_for(spec, options, backend, data_path, jobs, start_kernel)


def context_for(
    spec: Spec, options: GradingOptions, backend: Backend, data_path: Path | None = None, jobs: int = 1,
    start_kernel: bool = False,
) -> GradingContext:  # fmt: skip
    """``prepare_context`` for a spec already loaded (a draft's, for ``grader new``)."""
    path = locate_data(spec.data, data_path).resolve()
    isolation = probe_isolation()
    if options.strict_sandbox and isolation.missing():
        raise GraderError(
            f"--strict-sandbox: this machine lacks {'; '.join(isolation.missing())}. Install bubblewrap "
            "(Debian: apt-get install bubblewrap) and util-linux, run as root for the uid change and cgroups, "
            "or grade without --strict-sandbox."
        )
    per_gpu = -(-jobs // max(1, gpu_count()))
    environment = backend.environment(per_gpu)
    if start_kernel:
        KERNELS.start_spare(kernel_recipe(spec, options, backend, isolation, path, environment))
    dataset = load_dataset(path, spec.data)
    shape = spec.data.image_shape
    fingerprints = DataFingerprints(row_fingerprints(dataset.x_train, shape), row_fingerprints(dataset.x_test, shape))
    data_digest = file_digest(path)
    private = options.private_test or (Path(spec.data.private_test) if spec.data.private_test else None)
    if private is not None:
        private = private.resolve()
        load_private_test(private, spec.data)  # checked before any notebook runs
        # A verdict depends on the rows measured on: the store keys by both files.
        data_digest = hashlib.sha256(f"{data_digest} {file_digest(private)}".encode()).hexdigest()
    software = installed_versions() | {"backend": backend.key}
    return GradingContext(
        spec, path, fingerprints, options, isolation, data_digest, software, backend, environment,
        private_test=private,
    )  # fmt: skip


def grade_notebook(path: Path, context: GradingContext, more_to_come: bool = False) -> Graded:
    """Grade one notebook file. Whatever the notebook does, a result comes back; a fault of
    the grader's own raises ``GraderFault`` with the logs gathered so far. ``more_to_come``:
    this process grades another notebook next (see ``grader.run.warm``)."""
    started = time.monotonic()
    try:
        submission = load_submission(path)
    except InvalidSubmission as error:
        return Graded(unrunnable_result(path, "invalid", str(error), context))
    with instrumented_run(submission, context, more_to_come) as (execution, facts, sandbox):
        logs = _kernel_logs(sandbox, execution)
        if execution.outcome == "kernel_failed":
            raise GraderFault(execution.message or "the notebook's kernel failed", logs)
        spec = context.spec
        models, matching = assign_models(spec, facts, [cell.source for cell in submission.notebook.cells])
        exported = [found for model in models.values() if (found := model.exported()) is not None]
        report("evaluating", "measuring the models with the grader's own evaluator", models=len(exported))
        if context.options.quick:
            evaluations = near_copies_without_a_model(
                exported, context.data_path, spec.data, context.fingerprints.train
            )
        else:
            try:
                evaluations, logs["evaluator.log"] = evaluate_models(exported, evaluator_recipe(context))
            except GraderFault as fault:
                raise GraderFault(str(fault), {**logs, **fault.logs}) from None
    checks = run_checks(spec, models, evaluations, context.options.quick, _missing_model_hint(execution))
    # The notebook's text is read on the host within what is left of its time budget
    deadline = Deadline(max(started + context.options.time_limit, time.monotonic() + MIN_TEXT_SECONDS))
    findings = [
        *matching,
        *doctored_history_warnings(spec, models, evaluations),
        *above_the_band_warnings(spec, models, evaluations),
        *preprocessing_warnings(evaluations),
        # What a notebook says of its accuracy; a regression's error is not read from its text
        *(
            _claims(submission, spec, models, evaluations, checks, deadline)
            if spec.data.metric.higher_is_better
            else []
        ),
    ]
    result = _result(submission, execution, facts, models, evaluations, checks, findings, context)
    result = _with_answers(result, submission, spec, deadline, context.class_text)
    timings = {"kernel_start": execution.start_seconds, "cells": execution.seconds}
    result = replace(
        result,
        timings={**timings, "grading": round(time.monotonic() - started, 3)},
        kernel_start="forked" if execution.forked else "cold",
    )
    notebook = nbformat.writes(execution.notebook) if execution.notebook is not None else None  # type: ignore[no-untyped-call]
    return Graded(result, notebook, logs)


def _claims(
    submission: Submission,
    spec: Spec,
    models: dict[str, ModelFacts],
    evaluations: dict[str, Evaluation],
    checks: list[CheckResult],
    deadline: Deadline,
) -> list[str]:
    """What the notebook's markdown states that the grader's figures contradict; a warning
    instead, if reading it takes past ``deadline``."""
    try:
        claims = find_claims(submission.notebook, spec, _improvement_cell(spec, models), deadline)
    except OutOfTime:
        return [OUT_OF_TIME.format(what="what its text states of its models")]
    return claim_warnings(claims, models, evaluations, checks)


def _with_answers(
    result: SubmissionResult,
    submission: Submission,
    spec: Spec,
    deadline: Deadline | None = None,
    class_text: frozenset[str] = frozenset(),
) -> SubmissionResult:
    """The result with the notebook's written answers. Reading them is the grader's own work on
    a notebook already graded: if it fails, the code's grade stands, without the answers."""
    try:
        answers = find_answers(submission.notebook, spec.questions, _handout(spec.handout), deadline, class_text)
    except OutOfTime:
        return replace(result, warnings=(*result.warnings, OUT_OF_TIME.format(what="its written answers")))
    except Exception as error:  # a bug of the grader's: never the notebook's grade
        note = f"the grader could not read the written answers ({type(error).__name__}: {error}); please report it"
        return replace(result, warnings=(*result.warnings, note))
    return replace(result, answers=answers)


@functools.lru_cache(maxsize=4)
def _handout(path: Path | None) -> nbformat.NotebookNode | None:
    """The notebook students start from, read once per process: its cells end an answer."""
    if path is None or not path.is_file():
        return None
    handout: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    return handout


def _improvement_cell(spec: Spec, models: dict[str, ModelFacts]) -> int | None:
    """The cell that trained the improvement: the answer to "did it improve?" comes after it."""
    graded = [models[model.name] for model in spec.models if model.kind == "improvement" and model.name in models]
    return max(graded[0].cells, default=None) if graded else None


def _kernel_logs(sandbox: Sandbox, execution: Execution) -> dict[str, str]:
    """What the kernel process and the grader's own cells printed, each cut to its end."""
    try:  # the kernel may have put something else in its log's place: read as its other files are
        kernel_log = read_tail(sandbox.kernel_log, MAX_LOG_CHARS).decode(errors="replace")
    except (OSError, UntrustedDataError) as error:
        kernel_log = f"the kernel's log could not be read: {error}"
    return {"kernel.log": kernel_log, "instrumentation.log": execution.instrumentation_output[-MAX_LOG_CHARS:]}


@contextmanager
def instrumented_run(
    submission: Submission, context: GradingContext, more_to_come: bool = False
) -> Iterator[tuple[Execution, KernelFacts, Sandbox]]:
    """Run the notebook in a sandboxed kernel (this process' spare, if it has one; see
    ``grader.run.warm``) and read what it exported; the files it exported (its models' weights)
    stay readable in the sandbox until the block ends."""
    recipe = kernel_recipe(
        context.spec, context.options, context.backend, context.isolation, context.data_path,
        context.backend_environment,
    )  # fmt: skip
    kernel = KERNELS.take(recipe, more_to_come)
    try:
        execution = kernel.run(submission.path, submission.notebook, context.options.time_limit)
        sandbox = kernel.sandbox
        facts = read_facts(sandbox.facts_dir, context.spec.model_names, context.fingerprints, execution.student_cells)
        yield execution, facts, sandbox
    finally:
        kernel.close()


def evaluator_recipe(context: GradingContext) -> EvaluatorRecipe:
    """What every evaluator of a grading starts with: the canary is the exercise's first fixed
    model as the exercise builds it (a one-layer classifier for an exercise without one)."""
    spec = context.spec
    fixed = spec.fixed_models
    canary = (
        spec.expected_architecture(fixed[0])
        if fixed
        else Architecture(
            spec.data.preprocessing.shape,
            (Layer("Flatten"), Layer("Dense", units=spec.data.classes, activation="softmax")),
        )
    )
    largest = max((model.params or model.max_params or 0 for model in spec.models), default=0)
    bounds = RebuildBounds.for_images(spec.data.preprocessing.shape, largest)
    return EvaluatorRecipe(
        context.backend.name, context.data_path, spec.data, bounds, canary, context.isolation, context.options.limits,
        private_test=context.private_test,
    )  # fmt: skip


def kernel_recipe(
    spec: Spec, options: GradingOptions, backend: Backend, isolation: Isolation, data_path: Path,
    backend_environment: dict[str, str],
) -> KernelRecipe:  # fmt: skip
    """What every kernel of a grading starts with, before its notebook is known."""
    # TensorFlow spends CPU time on every core: the CPU limit is the wall limit on all of them.
    cpu_seconds = int(options.time_limit * len(os.sched_getaffinity(0))) + 60
    references = (
        spec.path,
        *([spec.calibration_path] if spec.calibration_path and spec.calibration_path.is_file() else []),
    )
    return KernelRecipe(
        isolation, options.limits, data_path, references, cpu_seconds, tuple(sorted(backend_environment.items())),
        hook_settings(spec, options, backend, facts_dir="", data_path=""), start_timeout=options.time_limit,
        data_name=spec.data.name if spec.data.file else None,
    )  # fmt: skip


def hook_settings(
    spec: Spec, options: GradingOptions, backend: Backend, facts_dir: str, data_path: str
) -> HookSettings:
    """What the instrumentation needs: where to export, what data to serve, how to run."""
    return HookSettings(
        facts_dir=facts_dir,
        data_path=data_path,
        keras_dataset=spec.data.keras_dataset,
        image_shape=spec.data.image_shape,
        model_names=tuple(spec.model_names),
        quick=options.quick,
        quick_train_rows=options.quick_train_rows,
        quick_validation_rows=options.quick_validation_rows,
        steps_per_execution=backend.steps_per_execution if options.accelerate else 0,
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
    models: dict[str, ModelFacts],
    evaluations: dict[str, Evaluation],
    checks: list[CheckResult],
    findings: list[str],
    context: GradingContext,
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
        path=name_text(str(submission.path)),
        status=status,
        score=earned,
        max_score=available,
        checks=tuple(checks),
        warnings=_bounded(
            [
                *submission.notes,
                *(error.describe() for error in execution.cell_errors),
                *facts.warnings,
                *findings,
                *_output_warning(execution),
                *_kernel_warning(execution),
            ]
        ),
        models={
            name: _model_record(model, evaluations.get(name), context.spec.data.metric)
            for name, model in models.items()
        },
        error=error,
        seconds=execution.seconds,
        environment=facts.environment,
        isolation=context.isolation.describe(),
        backend=context.backend.key,
        kernel_asked=execution.kernel_asked if execution.kernel_asked != GRADER_KERNEL else None,
    )


def _model_record(facts: ModelFacts, evaluation: Evaluation | None, measured: Metric) -> ModelRecord:
    """What results.json holds of a model: its measurements named by ``measured``, the exercise's metric."""
    history: dict[str, list[float | None]] = {}
    for fit in facts.fits:
        for metric, values in fit.history.items():
            history.setdefault(modern_metric(metric), []).extend(values)
    return ModelRecord(
        architecture=facts.architecture,
        history=history,
        epoch_times=tuple(round(seconds, 4) for fit in facts.fits for seconds in fit.epoch_times),
        test_value=evaluation.test_value if evaluation else None,
        train_value=evaluation.train_value if evaluation else None,
        variable=facts.variables[0] if facts.variables and facts.variables[0] != facts.name else None,
        preprocessing=evaluation.preprocessing if evaluation else None,
        metric=measured.key,
    )


def _bounded(warnings: list[str]) -> tuple[str, ...]:
    """At most ``MAX_WARNINGS`` warnings, saying how many more there were."""
    if len(warnings) <= MAX_WARNINGS:
        return tuple(warnings)
    return (*warnings[:MAX_WARNINGS], f"and {len(warnings) - MAX_WARNINGS:,} more warnings")


def _kernel_warning(execution: Execution) -> tuple[str, ...]:
    if execution.kernel_asked in (None, GRADER_KERNEL):
        return ()
    return (
        f"the notebook names the kernel {execution.kernel_asked!r} (from the machine it was saved on); "
        "it ran in the grader's own Python kernel",
    )


def _output_warning(execution: Execution) -> tuple[str, ...]:
    warnings = []
    if execution.output_dropped:
        limit = MAX_OUTPUT_BYTES // 2**20
        warnings.append(
            f"the notebook printed more than {limit} MiB of output; the rest was dropped (print less, e.g. verbose=0)"
        )
    if execution.comm_messages:
        warnings.append(f"{execution.comm_messages:,} widget messages were dropped: widgets are not graded")
    if execution.write_limit_reached:
        warnings.append(
            "the notebook filled the space it may write where the grader reads (--write-limit); writes beyond failed"
        )
    return tuple(warnings)


def unrunnable_result(path: Path, status: SubmissionStatus, reason: str, context: GradingContext) -> SubmissionResult:
    """A result for a file that could not be run at all: every check is an error."""
    checks = [
        check
        for model in context.spec.models
        for check in checks_not_run(model, f"Not graded: {reason}", context.options.quick)
    ]
    earned, available = score(checks)
    return SubmissionResult(
        submission_id(path), name_text(str(path)), status, earned, available, tuple(checks), error=reason
    )


def grade_safely(path: Path, context: GradingContext, more_to_come: bool = False) -> Graded:
    """``grade_notebook``, with a fault of the grader's own retried (a fresh kernel at once,
    then once more after a pause) and, if it persists, turned into a ``not_graded`` result."""
    for attempt in range(1, GRADING_ATTEMPTS + 1):
        if attempt == GRADING_ATTEMPTS:
            time.sleep(context.options.retry_pause)
        try:
            graded = grade_notebook(path, context, more_to_come)
        except GraderFault as fault:
            reason, logs = str(fault), fault.logs
        except Exception as error:  # a bug of the grader's must not cost the rest of the batch
            reason = f"the grader failed on this file ({type(error).__name__}: {error}); please report it"
            logs = {"grader.log": traceback.format_exc()}
        else:
            # The kernel's messages and outputs are the student's text: what no file can hold is replaced
            result = encodable_result(replace(graded.result, attempts=attempt))
            return replace(graded, result=result, notebook=encodable(graded.notebook) if graded.notebook else None)
    return Graded(not_graded_result(path, reason, context, GRADING_ATTEMPTS), logs=logs)


def not_graded_result(path: Path, reason: str, context: GradingContext, attempts: int = 1) -> SubmissionResult:
    """The result of a notebook that a fault of the grader's kept from being graded: no score."""
    return SubmissionResult(
        submission_id(path),
        name_text(str(path)),
        "not_graded",
        score=None,
        max_score=None,
        checks=(),
        error=NOT_YOUR_FAULT.format(reason=reason),
        isolation=context.isolation.describe(),
        attempts=attempts,
    )
