"""The CSV files of a run: a gradebook an LMS imports, and every check's points."""

from __future__ import annotations

import csv
import io
import re

from grader.judge.results import GradeRun

# Canvas names the files of a bulk download "<name>[_late]_<user id>_<submission id>_<file>".
CANVAS_DOWNLOAD_NAME = re.compile(r"^(?P<name>[^_]+)(?:_late)?_(?P<user_id>\d+)_\d+_", re.IGNORECASE)


def lms_identity(submission_id: str) -> tuple[str, str]:
    """The student's name and LMS user id, read from a Canvas download's file name; else the id and ""."""
    match = CANVAS_DOWNLOAD_NAME.match(submission_id)
    if match:
        return match["name"], match["user_id"]
    return submission_id, ""


def gradebook_csv(run: GradeRun) -> str:
    """One row per submission in the columns Canvas imports (Moodle maps them by hand).

    ``Student`` and ``SIS Login ID`` hold the submission's id (its file name), ``ID`` the
    Canvas user id when the file name is Canvas's own; the last column is the score.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", run.spec])
    for result in run.submissions:
        name, user_id = lms_identity(result.id)
        writer.writerow([name, user_id, "", result.id, "", f"{result.score:g}"])
    return buffer.getvalue()


def checks_csv(run: GradeRun) -> str:
    """Every check's points per submission, for a closer look than a gradebook gives."""
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
