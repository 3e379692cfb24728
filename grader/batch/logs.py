"""Logs kept for diagnosis: what the kernel, the instrumentation and the evaluator printed
while a notebook was graded, in ``OUT/logs/<submission>/``, for every fault of the
grader's and, when asked, for every grading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from grader.ingest.notebook import file_stem
from grader.judge.results import Graded
from grader.protocol.files import write_atomically

LOGS_DIR = "logs"


def keep_logs(graded: Graded, out_dir: Path, always: bool = False) -> Graded:
    """Write ``graded``'s logs under ``out_dir`` when the grader failed on it, or ``always``;
    the result then names their folder, relative to ``out_dir``."""
    if not graded.logs or not (always or graded.result.fault == "grader"):
        return graded
    folder = out_dir / LOGS_DIR / file_stem(graded.result.id)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in graded.logs.items():
        write_atomically(folder / name, text)
    return replace(graded, result=replace(graded.result, logs=f"{LOGS_DIR}/{folder.name}"))
