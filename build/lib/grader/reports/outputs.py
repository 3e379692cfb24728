"""Write a run's outputs into the output folder: ``results.json``, ``gradebook.csv``,
``checks.csv``, ``index.html``, and per submission its page and its executed notebook.
Every file is written whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

from grader.judge.results import GradeRun, SubmissionResult
from grader.protocol.files import write_atomically
from grader.reports.gradebooks import checks_csv, gradebook_csv
from grader.reports.pages import NOTEBOOKS_DIR, PAGES_DIR, index_page, notebook_page, page_name, submission_page
from grader.spec.exercise import Spec


def write_page(result: SubmissionResult, notebook: str | None, run: GradeRun, spec: Spec, out_dir: Path) -> None:
    """One submission's page and its executed notebook, written as soon as it is graded."""
    name = page_name(result.id)
    link = None
    if notebook is not None:
        (out_dir / NOTEBOOKS_DIR).mkdir(parents=True, exist_ok=True)
        write_atomically(out_dir / NOTEBOOKS_DIR / name, notebook_page(result, notebook, run.mode))
        link = f"../{NOTEBOOKS_DIR}/{name}"
    (out_dir / PAGES_DIR).mkdir(parents=True, exist_ok=True)
    write_atomically(out_dir / PAGES_DIR / name, submission_page(result, run, spec, link))


def write_summaries(run: GradeRun, spec: Spec, out_dir: Path) -> None:
    """The files about the whole class."""
    write_atomically(out_dir / "gradebook.csv", gradebook_csv(run))
    write_atomically(out_dir / "checks.csv", checks_csv(run))
    write_atomically(out_dir / "index.html", index_page(run, spec))
    write_atomically(out_dir / "results.json", json.dumps(run.to_dict(), indent=2) + "\n")
