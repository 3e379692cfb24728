"""A deadline for the grader's own work on a notebook's text, inside the notebook's time budget.

The notebook's code runs under ``--timeout``; what the grader then reads of its text (the
written answers, the claims) is done on the host, and must end within the same budget however
the text is shaped: the readers call ``check`` as they go, and a reader past the deadline is
given up, with a warning, while the code's grade stands.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


class OutOfTime(Exception):
    """The deadline passed before the reading of the text was done."""


@dataclass(frozen=True)
class Deadline:
    """A moment on ``time.monotonic``'s clock."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    @classmethod
    def never(cls) -> Deadline:
        return cls(float("inf"))

    def check(self) -> None:
        """Raise ``OutOfTime`` once the deadline has passed."""
        if time.monotonic() > self.at:
            raise OutOfTime
