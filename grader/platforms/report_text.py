"""A result as plain text (Markdown), for platforms that show the grader's report as text."""

from __future__ import annotations

from grader.judge.results import SubmissionResult

MARKS = {"pass": "✓", "fail": "✗", "error": "!", "skipped": "–"}


def report_markdown(result: SubmissionResult, title: str) -> str:
    """The report a student reads: the score, each check with what to do, the warnings."""
    if result.score is None:
        return f"## {title}: not graded\n\n{result.error}\n"
    lines = [f"## {title}: {result.score:g} / {result.max_score:g}", ""]
    if result.error:
        lines += [f"**{result.error}**", ""]
    lines += ["| check | verdict | points | what the grader found |", "|---|---|---|---|"]
    for check in result.checks:
        message = check.message.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {check.id} | {MARKS[check.status]} {check.status} | {check.points:g}/{check.max_points:g} | {message} |"
        )
    if result.warnings:
        lines += ["", "Warnings:", *(f"- {warning}" for warning in result.warnings)]
    return "\n".join(lines) + "\n"
