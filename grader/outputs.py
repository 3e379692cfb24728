"""Write a run's outputs: ``results.json``, ``gradebook.csv``, ``index.html`` and
one HTML page per submission. Every file is written whole or not at all."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from grader.results import GradeRun, SubmissionResult

PAGES_DIR = "submissions"

_templates = Environment(
    loader=PackageLoader("grader", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page_name(submission_id: str) -> str:
    """A file name for a submission's page, whatever characters its id holds."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", submission_id).lstrip(".") + ".html"


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def gradebook_csv(run: GradeRun) -> str:
    check_ids = list(dict.fromkeys(check.id for result in run.submissions for check in result.checks))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "score", "max_score", "status", *check_ids])
    for result in run.submissions:
        points = {check.id: "" if check.status == "skipped" else f"{check.points:g}" for check in result.checks}
        writer.writerow(
            [
                result.id,
                f"{result.score:g}",
                f"{result.max_score:g}",
                result.status,
                *(points.get(check_id, "") for check_id in check_ids),
            ]
        )
    return buffer.getvalue()


def submission_page(result: SubmissionResult, run: GradeRun) -> str:
    return _templates.get_template("submission.html.j2").render(result=result, run=run)


def index_page(run: GradeRun) -> str:
    return _templates.get_template("index.html.j2").render(run=run, page_name=page_name)


def write_page(result: SubmissionResult, run: GradeRun, out_dir: Path) -> None:
    """One submission's page, written as soon as it is graded."""
    (out_dir / PAGES_DIR).mkdir(parents=True, exist_ok=True)
    write_atomically(out_dir / PAGES_DIR / page_name(result.id), submission_page(result, run))


def write_summaries(run: GradeRun, out_dir: Path) -> None:
    """The files about the whole class: gradebook, class page, results.json."""
    write_atomically(out_dir / "gradebook.csv", gradebook_csv(run))
    write_atomically(out_dir / "index.html", index_page(run))
    write_atomically(out_dir / "results.json", json.dumps(run.to_dict(), indent=2) + "\n")
