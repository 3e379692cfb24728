"""Results: one per submission, and the run that holds them. Plain data that
serialises to the JSON schema of ``results.json`` (``RESULTS_SCHEMA_VERSION``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from grader.ingest.roster import Student
from grader.judge.answers import Answer
from grader.judge.checks import CheckResult
from grader.judge.written import WrittenGrade
from grader.protocol.text import encodable_data
from grader.spec.architecture import Architecture
from grader.spec.exercise import ACCURACY, METRICS_BY_KEY
from grader.spec.questions import Question

# The version of results.json's schema (``grader/reports/results.schema.json``), written at its
# top. 2: each model names its ``metric`` and holds its measurements under the metric's own name
# (``test_accuracy``, a regression's ``test_mean_absolute_error``); before it (no version
# written) every measurement was a ``test_accuracy``, a regression's mean absolute error too.
RESULTS_SCHEMA_VERSION = 2

SubmissionStatus = Literal["graded", "error", "timeout", "invalid", "not_graded"]
Fault = Literal["submission", "grader"]
KernelStart = Literal["forked", "cold"]
# Whose fault a status is: ``not_graded`` is the grader's (the notebook was not graded
# and gets no score); the others that are not ``graded`` are the submission's.
FAULT_OF_STATUS: dict[SubmissionStatus, Fault | None] = {
    "graded": None,
    "error": "submission",
    "timeout": "submission",
    "invalid": "submission",
    "not_graded": "grader",
}


@dataclass(frozen=True)
class ModelRecord:
    """What the grader saw of one model: its layers, its training as the notebook
    recorded it (epochs of every fit, in order) and the grader's own measurement of the
    exercise's metric (``metric``, a ``Metric.key``: a classifier's ``accuracy``, a regression's
    ``mean_absolute_error``), which results.json holds under the metric's own name
    (``test_accuracy``, ``test_mean_absolute_error``)."""

    architecture: Architecture | None
    # None where a value was not a finite number
    history: dict[str, list[float | None]] = field(default_factory=dict)
    epoch_times: tuple[float, ...] = ()
    # The grader's own measurement of ``metric`` on the test rows (full mode)
    test_value: float | None = None
    # The same on as many training rows (every 6th): set beside the test measurement, it tells
    # a model trained on the test set
    train_value: float | None = None
    # The notebook's variable, when it is not the spec's name (an improvement, a renamed model)
    variable: str | None = None
    # How the grader prepared the test images for it
    preprocessing: str | None = None
    metric: str = ACCURACY.key

    @property
    def params(self) -> int | None:
        return self.architecture.param_count() if self.architecture else None

    @property
    def metric_name(self) -> str:
        """The metric as text says it: ``accuracy``, ``mean absolute error``."""
        known = METRICS_BY_KEY.get(self.metric)
        return known.name if known else self.metric.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture.to_dict() if self.architecture else None,
            "history": self.history,
            "epoch_times": list(self.epoch_times),
            "metric": self.metric,
            f"test_{self.metric}": self.test_value,
            f"train_{self.metric}": self.train_value,
            "variable": self.variable,
            "preprocessing": self.preprocessing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRecord:
        """A model's record as results.json (or the store) holds it; one written before schema
        version 2 names no metric and holds its measurement as ``test_accuracy`` (a regression's
        mean absolute error too: such a record reads as an accuracy, as it was written)."""
        architecture = data.get("architecture")
        metric = str(data.get("metric", ACCURACY.key))
        return cls(
            architecture=Architecture.from_dict(architecture) if architecture else None,
            history=data.get("history", {}),
            epoch_times=tuple(data.get("epoch_times", ())),
            test_value=data.get(f"test_{metric}"),
            train_value=data.get(f"train_{metric}"),
            variable=data.get("variable"),
            preprocessing=data.get("preprocessing"),
            metric=metric,
        )


@dataclass(frozen=True)
class SubmissionResult:
    id: str
    path: str
    status: SubmissionStatus
    # None when the notebook could not be graded through a fault of the grader's
    score: float | None
    max_score: float | None
    checks: tuple[CheckResult, ...]
    warnings: tuple[str, ...] = ()
    models: dict[str, ModelRecord] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)
    isolation: str = "not run"
    # The kernel the notebook's metadata named, when it is not the grader's own
    kernel_asked: str | None = None
    # Gradings it took: more than one when a fault of the grader's was retried
    attempts: int = 1
    # The folder, relative to the output folder, that keeps the kernel's and evaluator's logs
    logs: str | None = None
    # Who submitted it, in the LMS's terms, when the grader was handed an LMS's download
    student: Student | None = None
    # The Keras backend and device kind it trained on ("jax/gpu"), when it ran
    backend: str | None = None
    # Its answers to the spec's written questions, in the spec's order
    answers: tuple[Answer, ...] = ()
    # Where the grading's seconds went: waiting for its kernel ("kernel_start", request to first
    # cell), the notebook's cells ("cells"), all of it ("grading"); and how its kernel started
    timings: dict[str, float] = field(default_factory=dict)
    kernel_start: KernelStart | None = None

    @property
    def fault(self) -> Fault | None:
        return FAULT_OF_STATUS[self.status]

    @property
    def all_passed(self) -> bool:
        """Every check passed or was skipped, and grading itself went through."""
        return self.status == "graded" and all(check.status in ("pass", "skipped") for check in self.checks)

    def trained_fairly(self, model: str) -> bool:
        """Whether ``model``'s training check passed: only such a model takes a place on a
        leaderboard (one trained on the test set does not)."""
        return any(check.id == f"{model}.training" and check.status == "pass" for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "status": self.status,
            "score": self.score,
            "max_score": self.max_score,
            "checks": [check.to_dict() for check in self.checks],
            "warnings": list(self.warnings),
            "models": {name: model.to_dict() for name, model in self.models.items()},
            "error": self.error,
            "seconds": self.seconds,
            "environment": self.environment,
            "isolation": self.isolation,
            "kernel_asked": self.kernel_asked,
            "attempts": self.attempts,
            "logs": self.logs,
            "student": self.student.to_dict() if self.student else None,
            "backend": self.backend,
            "answers": [answer.to_dict() for answer in self.answers],
            "timings": self.timings,
            "kernel_start": self.kernel_start,
            "fault": self.fault,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        derived = ("fault", "written", "total")  # what a GradeRun adds to each
        return cls(
            **{
                **{key: value for key, value in data.items() if key not in derived},
                "checks": tuple(CheckResult(**check) for check in data["checks"]),
                "warnings": tuple(data.get("warnings", ())),
                "models": {name: ModelRecord.from_dict(model) for name, model in data.get("models", {}).items()},
                "student": Student.from_dict(data["student"]) if data.get("student") else None,
                "answers": tuple(Answer.from_dict(answer) for answer in data.get("answers", ())),
            }
        )


def encodable_result(result: SubmissionResult) -> SubmissionResult:
    """``result`` with every text in it encodable as UTF-8 (``grader.protocol.text``): the
    messages a kernel sent and the notebook's own text are the student's to choose."""
    data, replaced = encodable_data(result.to_dict())
    return SubmissionResult.from_dict(data) if replaced else result


@dataclass(frozen=True)
class Drawings:
    """The slow parts of a submission's pages, drawn by the worker that graded it so that the
    process writing the reports only puts pages together: the notebook as it ran, as sanitised
    HTML (None where it could not be drawn), and each model's plot as a data URI (None for no
    plot), by the spec's model names."""

    notebook_html: str | None = None
    curves: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Graded:
    """A result, the notebook as it ran (nbformat JSON) for the reports if it ran, the logs of
    the grading (file name -> text) for diagnosis, and its pages' parts where a worker drew them."""

    result: SubmissionResult
    notebook: str | None = None
    logs: dict[str, str] = field(default_factory=dict)
    drawings: Drawings | None = None


def score(checks: list[CheckResult]) -> tuple[float, float]:
    """Points earned and points available; skipped checks count in neither."""
    counted = [check for check in checks if check.status != "skipped"]
    return sum(check.points for check in counted), sum(check.max_points for check in counted)


@dataclass(frozen=True)
class GradeRun:
    grader_version: str
    mode: Literal["quick", "full"]
    spec: str
    submissions: tuple[SubmissionResult, ...]
    # The points a notebook can earn in this mode, from the spec
    max_score: float | None = None
    # What the instructor must do by hand (a notebook no gradebook import can place)
    notices: tuple[str, ...] = ()
    # The spec's written questions and their rubrics, graded by hand with ``grader review``
    questions: tuple[Question, ...] = ()
    # Each submission's grades of its written answers so far, by submission id
    written: Mapping[str, tuple[WrittenGrade, ...]] = field(default_factory=dict)
    # Totals from the code's points alone, whatever the written answers' grading
    partial: bool = False

    def total(self, result: SubmissionResult) -> float | None:
        """What the gradebooks give ``result``: the code's points and the written answers', or
        None (blank) until every answer is graded, unless ``partial``."""
        if result.score is None or self.partial:
            return result.score
        if self.ungraded(result):
            return None
        return result.score + sum(grade.points or 0.0 for grade in self.written.get(result.id, ()))

    @property
    def max_total(self) -> float | None:
        """The points a notebook can earn, the written questions' included unless ``partial``."""
        return self._with_written(self.max_score)

    def max_total_of(self, result: SubmissionResult) -> float | None:
        """The points ``result`` could earn: its checks' and, unless ``partial``, the questions'."""
        return self._with_written(result.max_score)

    def _with_written(self, code_points: float | None) -> float | None:
        if code_points is None or self.partial:
            return code_points
        return code_points + sum(question.points for question in self.questions)

    def ungraded(self, result: SubmissionResult) -> list[str]:
        """The questions whose answer in ``result`` nobody has graded yet."""
        graded = {grade.question for grade in self.written.get(result.id, ()) if grade.points is not None}
        return [question.id for question in self.questions if question.id not in graded]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "grader_version": self.grader_version,
            "mode": self.mode,
            "spec": self.spec,
            "max_score": self.max_score,
            "notices": list(self.notices),
            "questions": [question.to_dict() for question in self.questions],
            "partial": self.partial,
            "max_total": self.max_total,
            "submissions": [
                {
                    **result.to_dict(),
                    "written": [grade.to_dict() for grade in self.written.get(result.id, ())],
                    "total": self.total(result),
                }
                for result in self.submissions
            ],
        }
