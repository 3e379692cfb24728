"""Platforms: the entry points Gradescope, PrairieLearn and GitHub classrooms run, and
``export``, which sets a course up on each."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from grader.cli.options import DATA_OPTION, SPEC_OPTION, grading_context, grading_options
from grader.cli.output import (
    EXIT_CHECK_FAILED,
    EXIT_GRADER_ERROR,
    EXIT_NOT_GRADED,
    console,
    print_result,
    reports_grader_errors,
    stdout,
)
from grader.errors import GraderError
from grader.judge.results import SubmissionResult
from grader.run.warm import KERNELS
from grader.spec.datasets import locate_data
from grader.spec.exercise import load_spec

# What `grader github` writes in the repository: the result, for the workflow's check steps.
GITHUB_RESULTS = "grader-results.json"


def _root_option(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(default),
        show_default=True,
        help="The platform's folder (tests point it at a temporary one).",
    )


def _grade_for_platform(folder: Path, logs_out: Path, settings: dict[str, Any]) -> tuple[SubmissionResult, float]:
    """The submission in ``folder`` graded as ``grade`` would, its logs under ``logs_out``."""
    from grader.platforms.entry import grade_submission_folder

    started = time.monotonic()
    context = grading_context(**settings, start_kernel=True)
    with closing(KERNELS):  # the kernel started with the context is this submission's, or nobody's
        result = grade_submission_folder(folder, context, logs_out).result
    print_result(result)
    if result.logs:
        console.print(f"The grader's logs of this notebook: {escape(str(logs_out / result.logs))}", highlight=False)
    return result, time.monotonic() - started


@click.command()
@_root_option("/autograder")
@click.option(
    "--visibility",
    type=click.Choice(["visible", "hidden", "after_due_date", "after_published"]),
    default="visible",
    show_default=True,
    help="When students see the tests.",
)
@grading_options(quick_by_default=True)
@reports_grader_errors
def gradescope(root: Path, visibility: str, **settings: Any) -> None:
    """Gradescope's run_autograder: grade ROOT/submission, write ROOT/results/results.json.

    Exit 0 when the notebook was graded; 2 when a fault of the grader's kept it from being
    graded (no results.json: Gradescope reports that the autograder failed, never a zero).
    """
    from grader.platforms.results import gradescope_results

    result, seconds = _grade_for_platform(root / "submission", root / "results", settings)
    results = gradescope_results(result, load_spec(settings["spec_path"]), seconds, visibility)
    if results is None:
        sys.exit(EXIT_NOT_GRADED)
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "results.json").write_text(json.dumps(results, indent=2) + "\n")


@click.command()
@_root_option("/grade")
@grading_options(quick_by_default=True)
@reports_grader_errors
def prairielearn(root: Path, **settings: Any) -> None:
    """PrairieLearn's external grader: grade ROOT/student, write ROOT/results/results.json.

    A fault of the grader's makes the submission not gradable: no points lost, no attempt spent.
    """
    from grader.platforms.results import prairielearn_results

    result, _ = _grade_for_platform(root / "student", root / "results", settings)
    (root / "results").mkdir(parents=True, exist_ok=True)
    results = prairielearn_results(result, load_spec(settings["spec_path"]))
    (root / "results" / "results.json").write_text(json.dumps(results) + "\n")


@click.command()
@_root_option(".")
@click.option(
    "--classroom50",
    is_flag=True,
    help="Write classroom50's result.json and exit 0 whenever grading ran (its autograder.py's contract).",
)
@click.option(
    "--check",
    "check_id",
    metavar="ID",
    help="Grade nothing: exit 0 if the check ID (e.g. model_1.architecture) passed in ROOT/grader-results.json.",
)
@grading_options(quick_by_default=True)
@reports_grader_errors
def github(root: Path, classroom50: bool, check_id: str | None, **settings: Any) -> None:
    """GitHub classrooms: grade the repository's notebook, print the table, write the results.

    Writes ROOT/grader-results.json (the schema of results.json) and exits 0 when every check
    passes, 1 otherwise, 3 when a fault of the grader's kept it from grading; with
    --classroom50, writes ROOT/result.json and exits 0 whenever the notebook was graded.
    With --check, reads that file instead and passes or fails one check: GitHub Classroom's
    workflow scores each check in a step of its own.
    """
    from grader.platforms.results import classroom50_result

    results_path = root / GITHUB_RESULTS
    if check_id is not None:
        sys.exit(_github_check(results_path, check_id))
    result, _ = _grade_for_platform(root, root / ".grader-logs", settings)
    results_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if result.fault == "grader":
        sys.exit(EXIT_GRADER_ERROR)
    if classroom50:
        (root / "result.json").write_text(json.dumps(classroom50_result(result, os.environ), indent=2) + "\n")
        return
    sys.exit(0 if result.all_passed else EXIT_CHECK_FAILED)


def _github_check(results_path: Path, check_id: str) -> int:
    """The exit code of one check's step: 0 passed, 1 not, 3 when there is no graded result."""
    try:
        result = SubmissionResult.from_dict(json.loads(results_path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        why = escape(f"{results_path}: no graded result to read ({error})")
        console.print(f"[bold red]error:[/] {why}; grade first.")
        return EXIT_GRADER_ERROR
    if result.fault == "grader":
        console.print(f"[bold red]not graded:[/] {escape(result.error or '')}", highlight=False)
        return EXIT_GRADER_ERROR
    check = next((check for check in result.checks if check.id == check_id), None)
    if check is None:
        known = ", ".join(check.id for check in result.checks)
        console.print(f"[bold red]error:[/] {escape(f'no check {check_id!r} in {results_path}; its checks: {known}')}")
        return EXIT_GRADER_ERROR
    stdout.print(
        escape(f"{check.id}: {check.status}, {check.points:g}/{check.max_points:g}. {check.message}"), highlight=False
    )
    return 0 if check.status == "pass" else EXIT_CHECK_FAILED


@click.command()
@click.argument("platform", type=click.Choice(["gradescope", "prairielearn", "github"]))
@click.option(
    "--out", "out", type=click.Path(path_type=Path), required=True, help="The zip (Gradescope) or folder to write."
)
@click.option("--quick/--full", default=True, show_default=True, help="How the platform will grade.")
@click.option(
    "--requirement",
    default="keras-exercise-grader",
    show_default=True,
    help="GitHub: how pip installs the grader there (a name, or git+https://... of this repository).",
)
@DATA_OPTION
@SPEC_OPTION
@reports_grader_errors
def export(platform: str, out: Path, quick: bool, requirement: str, data_path: Path | None, spec_path: Path) -> None:
    """Set a course up on PLATFORM: Gradescope's autograder zip, PrairieLearn's grader image
    and info.json, a GitHub Classroom workflow and classroom50 autograder.py."""
    from grader.platforms import exports

    spec = load_spec(spec_path)
    if out.exists():
        raise GraderError(f"--out {out} exists already; name a new file or folder.")
    if platform == "github":
        exports.export_github(out, spec, quick, requirement)
    else:
        # A spec's own data file travels beside it (Spec.files); a loader's data set apart.
        data = None if spec.data.file and data_path is None else locate_data(spec.data, data_path)
        if platform == "gradescope":
            exports.export_gradescope(out, spec, data, quick)
        else:
            exports.export_prairielearn(out, spec, data, quick)
    console.print(f"Wrote {out}")
