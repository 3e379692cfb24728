"""Write a run's outputs into the output folder: ``results.json``, ``gradebook.csv``,
``checks.csv``, ``index.html``, and per submission its page and its executed notebook.
Every file is written whole or not at all, and a page that cannot be drawn is replaced by a
plain one that says why: one submission never costs the class its reports."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from grader.judge.results import Drawings, GradeRun, SubmissionResult
from grader.protocol.files import write_atomically
from grader.reports.gradebooks import Assignment, checks_csv, gradebook_csv, moodle_worksheet
from grader.reports.pages import (
    DIGEST_META,
    NOTEBOOKS_DIR,
    PAGES_DIR,
    improvement_standing,
    index_page,
    notebook_html,
    notebook_page,
    page_name,
    plain_page,
    submission_page,
    submission_page_digest,
)
from grader.reports.similarity import ClassSimilarity
from grader.spec.exercise import Spec


def write_page(
    result: SubmissionResult,
    notebook: str | None,
    run: GradeRun,
    spec: Spec,
    out_dir: Path,
    reused: bool = False,
    drawings: Drawings | None = None,
) -> str | None:
    """One submission's page and its executed notebook, written as soon as it is graded; what
    went wrong drawing them, if anything (a plain page says so in their place). A result
    ``reused`` from the store keeps the notebook page an earlier run drew of it; ``drawings``
    are the parts its worker drew already (``draw_parts``)."""
    curves = drawings.curves if drawings else None
    name = page_name(result.id)
    (out_dir / PAGES_DIR).mkdir(parents=True, exist_ok=True)
    link = None
    problem = None
    if notebook is not None:
        (out_dir / NOTEBOOKS_DIR).mkdir(parents=True, exist_ok=True)
        link = f"../{NOTEBOOKS_DIR}/{name}"
        if reused and (out_dir / NOTEBOOKS_DIR / name).is_file():
            # The same notebook, as it ran: drawing it again (nbconvert, the slow part) draws the same page.
            return _write_submission_page(result, run, spec, out_dir, link, curves)
        try:
            body = drawings.notebook_html if drawings else None
            page = notebook_page(result, body if body is not None else notebook_html(notebook), run.mode)
        except Exception as error:  # a notebook nbconvert cannot render: the grade stands without it
            problem = f"the executed notebook of {result.id} could not be rendered ({type(error).__name__}: {error})"
            page = plain_page(result.id, problem)
        write_atomically(out_dir / NOTEBOOKS_DIR / name, page)
    return _write_submission_page(result, run, spec, out_dir, link, curves) or problem


class DrawnCurves:
    """The plots workers drew for this run's pages, kept compressed (about 35 kB a notebook)
    for the pages drawn again at the end of the batch (``refresh_standings``): only where the
    spec has an improvement, whose standing in the class they show."""

    def __init__(self, spec: Spec) -> None:
        self._needed = any(model.kind == "improvement" for model in spec.models)
        self._compressed: dict[str, bytes] = {}

    def keep(self, submission_id: str, drawings: Drawings | None) -> None:
        if drawings is not None and self._needed:
            self._compressed[submission_id] = zlib.compress(json.dumps(drawings.curves).encode())

    def get(self, submission_id: str) -> dict[str, str | None] | None:
        compressed = self._compressed.get(submission_id)
        return json.loads(zlib.decompress(compressed)) if compressed is not None else None


def refresh_standings(
    run: GradeRun, spec: Spec, out_dir: Path, drawn: dict[str, str | None], curves: DrawnCurves | None = None
) -> None:
    """Draw again the pages whose improvement's standing moved since they were drawn (``drawn``:
    the standing each page shows), once the whole class is graded, with the plots in ``curves``."""
    for result in run.submissions:
        standing = improvement_standing(result, run, spec)
        if standing != drawn.get(result.id, standing):
            notebook = out_dir / NOTEBOOKS_DIR / page_name(result.id)
            link = f"../{NOTEBOOKS_DIR}/{page_name(result.id)}" if notebook.is_file() else None
            _write_submission_page(result, run, spec, out_dir, link, curves.get(result.id) if curves else None)


def _write_submission_page(
    result: SubmissionResult,
    run: GradeRun,
    spec: Spec,
    out_dir: Path,
    link: str | None,
    curves: Mapping[str, str | None] | None = None,
) -> str | None:
    """Draw the page, unless the one there was drawn from the same result, class and spec."""
    path = out_dir / PAGES_DIR / page_name(result.id)
    if _drawn_from(path, submission_page_digest(result, run, spec, link)):
        return None
    problem = None
    try:
        page = submission_page(result, run, spec, link, curves)
    except Exception as error:
        problem = f"the page of {result.id} could not be drawn ({type(error).__name__}: {error})"
        page = plain_page(result.id, problem + "\n\n" + json.dumps(result.to_dict(), indent=2))
    write_atomically(path, page)
    return problem


def _drawn_from(page: Path, digest: str) -> bool:
    """Whether ``page`` exists and names ``digest`` in its head."""
    try:
        with page.open(encoding="utf-8", errors="replace") as file:
            head = file.read(PAGE_HEAD_CHARS)
    except OSError:
        return False
    return DIGEST_META.format(digest=digest) in head


# Where a page's head, and the digest it names, ends
PAGE_HEAD_CHARS = 4096


def write_summaries(
    run: GradeRun,
    spec: Spec,
    out_dir: Path,
    assignment: Assignment | None = None,
    similarity: ClassSimilarity | None = None,
) -> str | None:
    """The files about the whole class, the data first; what went wrong drawing the class page."""
    write_atomically(out_dir / "results.json", json.dumps(run.to_dict(), indent=2) + "\n")
    write_atomically(out_dir / "gradebook.csv", gradebook_csv(run, assignment or Assignment(run.spec)))
    worksheet = moodle_worksheet(run, datetime.now())
    if worksheet is not None:
        write_atomically(out_dir / "moodle_grades.csv", worksheet)
    write_atomically(out_dir / "checks.csv", checks_csv(run))
    try:
        write_atomically(out_dir / "index.html", index_page(run, spec, similarity))
    except Exception as error:
        problem = f"the class page could not be drawn ({type(error).__name__}: {error})"
        write_atomically(out_dir / "index.html", plain_page(run.spec, problem + "; results.json holds every result."))
        return problem
    return None
