"""Results: one per submission, and the run that holds them. Plain data that
serialises to the JSON schema of ``results.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from grader.judge.checks import CheckResult
from grader.spec.architecture import Architecture

SubmissionStatus = Literal["graded", "error", "timeout", "invalid"]


@dataclass(frozen=True)
class ModelRecord:
    """What the grader saw of one model: its layers, its training as the notebook
    recorded it (epochs of every fit, in order) and the grader's own test accuracy."""

    architecture: Architecture | None
    history: dict[str, list[float]] = field(default_factory=dict)
    epoch_times: tuple[float, ...] = ()
    test_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture.to_dict() if self.architecture else None,
            "history": self.history,
            "epoch_times": list(self.epoch_times),
            "test_accuracy": self.test_accuracy,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRecord:
        architecture = data.get("architecture")
        return cls(
            architecture=Architecture.from_dict(architecture) if architecture else None,
            history=data.get("history", {}),
            epoch_times=tuple(data.get("epoch_times", ())),
            test_accuracy=data.get("test_accuracy"),
        )


@dataclass(frozen=True)
class SubmissionResult:
    id: str
    path: str
    status: SubmissionStatus
    score: float
    max_score: float
    checks: tuple[CheckResult, ...]
    warnings: tuple[str, ...] = ()
    models: dict[str, ModelRecord] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)
    isolation: str = "not run"

    @property
    def all_passed(self) -> bool:
        """Every check passed or was skipped, and grading itself went through."""
        return self.status == "graded" and all(check.status in ("pass", "skipped") for check in self.checks)

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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubmissionResult:
        return cls(
            **{
                **data,
                "checks": tuple(CheckResult(**check) for check in data["checks"]),
                "warnings": tuple(data.get("warnings", ())),
                "models": {name: ModelRecord.from_dict(model) for name, model in data.get("models", {}).items()},
            }
        )


@dataclass(frozen=True)
class Graded:
    """A result, and the notebook as it ran (nbformat JSON) for the reports, if it ran."""

    result: SubmissionResult
    notebook: str | None = None


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "grader_version": self.grader_version,
            "mode": self.mode,
            "spec": self.spec,
            "submissions": [result.to_dict() for result in self.submissions],
        }
