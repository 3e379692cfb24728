"""Exceptions the grader raises, each message saying what was found and what to do; and the
switch that makes the grader fail on purpose, for tests."""

import os

# A testing aid: GRADER_INJECT_FAULT=kernel-start|evaluator|evaluator-model|worker makes that part
# of the grader fail as if it were broken (the kernel exits at start, the evaluator crashes as
# it starts, or on every model as a hostile model would make it, the worker process is
# killed), so that tests can follow a fault end to end.
FAULT_INJECTION_ENV = "GRADER_INJECT_FAULT"
INJECTABLE_FAULTS = ("kernel-start", "evaluator", "evaluator-model", "worker")


def fault_injected(part: str) -> bool:
    """Whether ``GRADER_INJECT_FAULT`` asks ``part`` to fail."""
    return part in os.environ.get(FAULT_INJECTION_ENV, "").split(",")


class GraderError(Exception):
    """The grader itself cannot run (bad arguments, data or spec): exit non-zero."""


class SpecError(GraderError):
    """The spec file is missing, malformed or inconsistent."""


class DataError(GraderError):
    """The data set cannot be found, loaded or does not have the expected arrays."""


class UntrustedDataError(Exception):
    """Something that came out of a student's kernel is malformed or out of bounds."""


class GraderFault(Exception):
    """A fault of the grader's own while it graded one notebook (its kernel could not start, the
    instrumentation or the evaluator failed, a worker died): never the submission's, so the
    notebook is reported as not graded, never scored, and graded again on the next run.
    ``logs`` (file name -> text) keeps what the failing part printed, for diagnosis."""

    def __init__(self, message: str, logs: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.logs = logs or {}
