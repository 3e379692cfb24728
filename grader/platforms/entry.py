"""Grade the one notebook an autograder platform hands over, the way ``grader grade`` grades
a class: the same pipeline, its faults retried, its logs kept."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from grader.batch.logs import keep_logs
from grader.ingest.roster import pick_notebook
from grader.judge.pipeline import GradingContext, grade_safely, unrunnable_result
from grader.judge.results import Graded

NO_NOTEBOOK = "no .ipynb file was submitted: submit the notebook itself (File > Download as > Notebook)"


def grade_submission_folder(folder: Path, context: GradingContext, logs_out: Path) -> Graded:
    """The submission's notebook graded (its logs kept under ``logs_out`` if the grader failed);
    an ``invalid`` result when there is no notebook."""
    notebook, notes = pick_notebook(folder, context.spec.model_names)
    if notebook is None:
        return Graded(unrunnable_result(folder / "submission.ipynb", "invalid", NO_NOTEBOOK, context))
    graded = keep_logs(grade_safely(notebook, context), logs_out, context.options.keep_logs)
    if not notes:
        return graded
    return dataclasses.replace(
        graded, result=dataclasses.replace(graded.result, warnings=(*graded.result.warnings, *notes))
    )
