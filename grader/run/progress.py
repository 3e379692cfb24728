"""What a grading is doing now, for a tool that shows it while it runs (the Jupyter Check
button): ``report`` writes it, as one small JSON object, to the file ``reporting_to`` names,
replaced whole each time; nothing when no file is named."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grader.protocol.files import write_atomically

_target: Path | None = None
_started = 0.0


@contextmanager
def reporting_to(path: Path | None) -> Iterator[None]:
    """Within the block, ``report`` writes to ``path`` (None: nowhere)."""
    global _target, _started
    _target, _started = path, time.monotonic()
    try:
        report("starting", "starting the notebook's kernel")
        yield
    finally:
        _target = None


def report(stage: str, doing: str, **details: Any) -> None:
    """Say what the grading is doing: its ``stage`` (a word for tools), what it is ``doing``
    (words for a student) and details (the cell, how many there are)."""
    if _target is None:
        return
    state = {"stage": stage, "doing": doing, "elapsed": round(time.monotonic() - _started, 1), **details}
    try:
        write_atomically(_target, json.dumps(state))
    except OSError:  # the tool that asked went away: grading goes on
        pass
