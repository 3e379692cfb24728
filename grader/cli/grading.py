"""Grading: ``grade`` a class, ``check`` one notebook, ``similarity`` across a class."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from grader.batch.executors import default_jobs
from grader.batch.grade import grade_batch, make_executor, make_run
from grader.batch.logs import keep_logs
from grader.batch.store import ResultStore
from grader.cli.options import PATHS_ARGUMENT, SPEC_OPTION, grading_context, grading_options, out_option
from grader.cli.output import (
    EXIT_CHECK_FAILED,
    EXIT_GRADER_ERROR,
    EXIT_NOT_GRADED,
    console,
    print_result,
    progress_bar,
    reports_grader_errors,
    stdout,
)
from grader.errors import GraderError
from grader.ingest.roster import Roster, Submitted, read_roster
from grader.judge.pipeline import GradingContext, grade_safely
from grader.judge.results import Graded, GradeRun, SubmissionResult
from grader.judge.written import WrittenGrade
from grader.protocol.files import write_atomically
from grader.reports.similarity import DEFAULT_THRESHOLD, ClassSimilarity, class_similarity, expected_code
from grader.run.isolation import Isolation
from grader.run.progress import report, reporting_to
from grader.run.warm import KERNELS
from grader.run.zygote import usable_for
from grader.spec.exercise import Spec, load_spec

if TYPE_CHECKING:
    from grader.reports.gradebooks import Assignment
    from grader.reports.outputs import DrawnCurves
    from grader.review.marks import Marks

# How often a long batch refreshes gradebook.csv, index.html and results.json.
SUMMARY_INTERVAL_SECONDS = 30


@click.command()
@PATHS_ARGUMENT
@out_option("Folder for results.json, gradebook.csv, the HTML reports and the results store.")
@click.option("--force", is_flag=True, help="Regrade every notebook, even those already graded unchanged.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=default_jobs,
    show_default="1 per core, at most 1 per 4 GiB",
    help="Notebooks graded at once, each worker on its own share of the cores.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: worker processes on this machine; ray: tasks on a Ray cluster (pip install '.[ray]').",
)
@click.option(
    "--address", help="With --executor ray: the cluster to join (else a local Ray instance with --jobs CPUs)."
)
@click.option(
    "--cpus-per-task", type=click.FloatRange(min=0.01), default=1.0, show_default=True, help="Ray: CPUs per notebook."
)
@click.option(
    "--gpus-per-task",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Ray: the share of a GPU per notebook, e.g. 0.25 for four notebooks per card.",
)
@click.option("--canvas-assignment", help="The assignment's title in Canvas' gradebook [default: the spec's name].")
@click.option("--canvas-assignment-id", help="Canvas' id of the assignment, so that the import fills it.")
@click.option(
    "--no-similarity",
    "similarity",
    flag_value=False,
    default=True,
    help="Leave out the class page's section of similar notebooks.",
)
@click.option(
    "--partial",
    is_flag=True,
    help="Gradebook totals from the code's points alone, before the written answers are graded (grader review).",
)
@grading_options(quick_by_default=False)
@reports_grader_errors
def grade(
    paths: tuple[Path, ...],
    out_dir: Path,
    force: bool,
    jobs: int,
    executor: str,
    address: str | None,
    cpus_per_task: float,
    gpus_per_task: float,
    canvas_assignment: str | None,
    canvas_assignment_id: str | None,
    similarity: bool,
    partial: bool,
    **settings: Any,
) -> None:
    """Grade every .ipynb in the given folders and files, or in an LMS's download (a Canvas or
    Moodle zip or folder, an nbgrader course's submitted/ tree): one notebook per student."""
    # Imported here: the reports need matplotlib and nbconvert, which `check` does not.
    from grader.reports.gradebooks import Assignment
    from grader.reports.outputs import DrawnCurves, refresh_standings, write_summaries
    from grader.reports.pages import draw_parts
    from grader.review.marks import Marks

    _check_executor(executor, address)
    context = grading_context(**settings, jobs=jobs)
    assignment = Assignment(canvas_assignment or context.spec.name, canvas_assignment_id)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GraderError(f"--out {out_dir}: cannot create the folder ({error.strerror}).") from None
    with tempfile.TemporaryDirectory(prefix="grader-unpacked-") as unpacked:  # zips are unpacked here
        roster = _read_roster(paths, Path(unpacked), context.spec, "not graded")
        for notice in roster.notices:  # what no gradebook import can place
            console.print(f"[yellow]by hand:[/] {escape(notice)}", highlight=False, soft_wrap=True)
        with closing(ResultStore(out_dir)) as store, closing(Marks(out_dir, context.spec.questions)) as marks, \
                progress_bar() as progress:  # fmt: skip
            where = "on Ray" if executor == "ray" else f"{jobs} at a time" if jobs > 1 else ""
            task = progress.add_task(f"Grading {where}".strip(), total=len(roster.submissions))
            live = _LiveReports(context, out_dir, roster, partial, assignment, marks, progress, task,
                                curves=DrawnCurves(context.spec))  # fmt: skip
            chosen = make_executor(jobs, executor, address, cpus_per_task, gpus_per_task, draw_parts)
            run = grade_batch(roster.submissions, context, store, force, live.on_result, chosen, logs_out=out_dir)
            run = dataclasses.replace(run, notices=roster.notices, written=live.written, partial=partial)
            refresh_standings(run, context.spec, out_dir, live.standings, live.curves)
        similar = _similar_notebooks(roster.submissions, context.spec) if similarity else None
        _warn(write_summaries(run, context.spec, out_dir, assignment, similar))
    _report_kernels(live.kernel_starts, context.isolation)
    _report_batch(run, live.reused, out_dir, partial, context.options.mode)


def _check_executor(executor: str, address: str | None) -> None:
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise GraderError("--executor ray needs Ray: pip install 'keras-exercise-grader[ray]'.") from None
    elif address is not None:
        raise click.UsageError("--address needs --executor ray.")


def _read_roster(paths: tuple[Path, ...], unpacked: Path, spec: Spec, left_out: str) -> Roster:
    """The submissions in ``paths``, with what was left out shown (``left_out``: how it is said)."""
    roster = read_roster(list(paths), unpacked, spec.model_names)
    for note in roster.notes:
        console.print(f"[yellow]{left_out}:[/] {escape(note)}", highlight=False, soft_wrap=True)
    return roster


def _warn(problem: str | None, printer: Console = console) -> None:
    """A report the grader failed to write: the grades stand, the fault is the grader's."""
    if problem:
        printer.print(f"[yellow]warning:[/] {escape(problem)}; please report it", highlight=False)


@dataclass
class _LiveReports:
    """The reports of a batch while it is graded: each notebook's page as its result comes, a
    line on the console, and the class files now and then."""

    context: GradingContext
    out_dir: Path
    roster: Roster
    partial: bool
    assignment: Assignment
    marks: Marks
    progress: Progress
    task: TaskID
    curves: DrawnCurves  # the plots the workers drew, for the pages drawn again at the end
    results: list[SubmissionResult] = field(default_factory=list)
    standings: dict[str, str | None] = field(default_factory=dict)  # the improvement standing each page shows
    written: dict[str, tuple[WrittenGrade, ...]] = field(default_factory=dict)  # kept by `grader review`
    reused: int = 0
    # How the kernels of the notebooks graded now (not reused) started
    kernel_starts: list[str | None] = field(default_factory=list)
    summaries_written: float = field(default_factory=time.monotonic)

    def on_result(self, graded: Graded, was_reused: bool) -> None:
        from grader.reports.outputs import write_page, write_summaries
        from grader.reports.pages import improvement_standing

        spec = self.context.spec
        self.reused += was_reused
        if not was_reused:
            self.kernel_starts.append(graded.result.kernel_start)
        self.results.append(graded.result)
        self.written.update(self.marks.grades({graded.result.id: graded.result.answers}))
        run_so_far = make_run(self.context, self.results, self.roster.notices, self.written, self.partial)
        problem = write_page(
            graded.result, graded.notebook, run_so_far, spec, self.out_dir, was_reused, graded.drawings
        )
        self.standings[graded.result.id] = improvement_standing(graded.result, run_so_far, spec)
        self.curves.keep(graded.result.id, graded.drawings)
        # The class files cover every result so far: rewritten now and then, not per result.
        if time.monotonic() - self.summaries_written > SUMMARY_INTERVAL_SECONDS:
            problem = write_summaries(run_so_far, spec, self.out_dir, self.assignment) or problem
            self.summaries_written = time.monotonic()
        self.progress.console.print(_summary_line(graded.result, was_reused), highlight=False)
        _warn(problem, self.progress.console)
        self.progress.advance(self.task)


def _report_kernels(kernel_starts: list[str | None], isolation: Isolation) -> None:
    """How the kernels of the notebooks graded now started: forked from a zygote, or cold (and
    why, where no kernel could be forked here)."""
    forked, cold = kernel_starts.count("forked"), kernel_starts.count("cold")
    if not forked and not cold:
        return
    why = usable_for(isolation) if not forked else None
    console.print(
        f"Kernels: {forked} forked from a warm zygote, {cold} started cold" + (f" ({why})" if why else "") + ".",
        highlight=False,
        soft_wrap=True,
    )


def _report_batch(run: GradeRun, reused: int, out_dir: Path, partial: bool, mode: str) -> None:
    """What the batch came to; exit 2 when a fault of the grader's kept some notebook ungraded."""
    if reused:
        console.print(f"Reused {reused} earlier results of unchanged notebooks (--force regrades them).")
    not_graded = [result for result in run.submissions if result.fault == "grader"]
    console.print(
        f"Graded {len(run.submissions) - len(not_graded)} of {len(run.submissions)} submissions ({mode} mode). "
        f"Reports: {escape(str(out_dir / 'index.html'))}"
    )
    ungraded = sum(len(run.ungraded(result)) for result in run.submissions if result.score is not None)
    if ungraded and not partial:
        console.print(
            f"{ungraded} written answers are not graded yet: grade them with `grader review {escape(str(out_dir))}`. "
            "Until then "
            "the gradebooks leave those students' totals blank (--partial gives the code's points alone).",
            highlight=False,
            soft_wrap=True,
        )
    if not_graded:
        console.print(
            f"[bold red]{len(not_graded)} could not be graded through a fault of the grader[/] (no score, blank in "
            f"the gradebook; the next run grades them again): {escape(', '.join(r.id for r in not_graded))}. "
            f"Why: {escape(str(out_dir / 'logs'))}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(EXIT_NOT_GRADED)


def _similar_notebooks(
    submissions: Sequence[Submitted], spec: Spec, threshold: float = DEFAULT_THRESHOLD
) -> ClassSimilarity | None:
    """The pairs of ``submissions`` that share code beyond the handout's and the solution's;
    None, with a warning, when they cannot be compared (the grades stand without them)."""
    notebooks = {item.id: item.path for item in submissions}
    try:
        with console.status(f"Comparing the code of {len(notebooks)} notebooks pair by pair…"):
            found = class_similarity(notebooks, expected_code(spec.handout, spec.solution), threshold)
    except Exception as error:
        console.print(
            f"[yellow]warning:[/] the notebooks could not be compared ({type(error).__name__}: {escape(str(error))}); "
            "please report it",
            highlight=False,
        )
        return None
    if found.pairs:
        console.print(
            f"[yellow]{len(found.pairs)} pairs of notebooks share {threshold:.0%} of their own code or more:[/] "
            + escape(", ".join(f"{pair.first} and {pair.second}" for pair in found.pairs[:5]))
            + (" …" if len(found.pairs) > 5 else ""),
            highlight=False,
            soft_wrap=True,
        )
    return found


def _summary_line(result: SubmissionResult, reused: bool = False) -> str:
    took = "reused" if reused else f"{result.seconds:.0f} s"
    if result.score is None:
        why = escape(result.logs or "no logs")
        return f"{escape(f'{result.id:<28}')} [bold red]not graded[/] (a fault of the grader's: {why})"
    failed = [check.id for check in result.checks if check.status in ("fail", "error")]
    detail = f"  [red]{', '.join(failed)}[/]" if failed else ""
    return f"{escape(f'{result.id:<28}')} {result.status:<8} {result.score:g}/{result.max_score:g}  ({took}){detail}"


@click.command()
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (the schema of results.json).")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write the notebook's HTML page (as `grade` writes it) into this folder.",
)
@click.option(
    "--progress",
    "progress_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write what the grading is doing (the cell it runs, the seconds so far) to this file as JSON, "
    "replaced as it goes: for a tool that shows it, such as the Jupyter Check button.",
)
@grading_options(quick_by_default=True)
@reports_grader_errors
def check(notebook: Path, as_json: bool, report_dir: Path | None, progress_file: Path | None, **settings: Any) -> None:
    """Grade one notebook as the instructor's `grade` would, and show what to fix.

    Quick by default: seconds, not minutes. Exit 0 when every check passes, 1 otherwise,
    3 when a fault of the grader's kept it from grading the notebook.
    """
    with reporting_to(progress_file):
        context = grading_context(**settings, start_kernel=True)
        # The kernel started with the context is this notebook's, or nobody's.
        with console.status(f"Running {notebook.name} ({context.options.mode} mode)…"), closing(KERNELS):
            graded = grade_safely(notebook, context)
        logs_out = Path(tempfile.mkdtemp(prefix="grader-logs-"))
        result = keep_logs(graded, logs_out, context.options.keep_logs).result
        if result.logs is None:
            logs_out.rmdir()
        if report_dir is not None:
            report("report", "drawing the notebook's page")
            _write_check_page(graded, context, report_dir)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_result(result)
    if result.logs is not None:
        console.print(f"The grader's logs of this notebook: {escape(str(logs_out / result.logs))}", highlight=False)
    if result.fault == "grader":
        sys.exit(EXIT_GRADER_ERROR)
    sys.exit(0 if result.all_passed else EXIT_CHECK_FAILED)


def _write_check_page(graded: Graded, context: GradingContext, report_dir: Path) -> None:
    """The checked notebook's page, as ``grade`` draws it for a class of one."""
    from grader.reports.outputs import write_page
    from grader.reports.pages import PAGES_DIR, page_name

    result = graded.result
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GraderError(f"--report {report_dir}: cannot create it ({error.strerror}).") from None
    run = make_run(context, [result], partial=True)
    problem = write_page(result, graded.notebook, run, context.spec, report_dir, drawings=graded.drawings)
    page = Path(PAGES_DIR) / page_name(result.id)
    report("drawn", "done", page=str(page))  # where a tool finds it in report_dir
    console.print(
        f"The notebook's page: {escape(str(report_dir / page))}" + (f" ({escape(problem)})" if problem else "")
    )


@click.command()
@PATHS_ARGUMENT
@out_option("Folder for similarity.html.")
@click.option(
    "--threshold",
    type=click.FloatRange(min=0, max=1),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="The share of each notebook's own code found in the other from which a pair is listed.",
)
@SPEC_OPTION
@reports_grader_errors
def similarity(paths: tuple[Path, ...], out_dir: Path, threshold: float, spec_path: Path) -> None:
    """List the pairs of notebooks that share code beyond the handout's and the solution's.

    Reads what ``grade`` reads (folders, notebooks, an LMS's download), one notebook per student;
    writes OUT/similarity.html with the shared code side by side and prints the pairs.
    """
    from grader.reports.pages import similarity_page

    spec = load_spec(spec_path)
    with tempfile.TemporaryDirectory(prefix="grader-unpacked-") as unpacked:
        roster = _read_roster(paths, Path(unpacked), spec, "not compared")
        started = time.monotonic()
        found = _similar_notebooks(roster.submissions, spec, threshold)
    if found is None:
        sys.exit(EXIT_GRADER_ERROR)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(out_dir / "similarity.html", similarity_page(spec.name, found))
    except OSError as error:
        raise GraderError(f"--out {out_dir}: cannot write similarity.html ({error.strerror}).") from None
    if found.pairs:
        table = Table(title=f"Pairs sharing {threshold:.0%} or more", title_justify="left")
        for column in ("notebook", "notebook", "share of each one's code in the other"):
            table.add_column(column)
        for pair in found.pairs:
            table.add_row(escape(pair.first), escape(pair.second), f"{pair.shares[0]:.0%} / {pair.shares[1]:.0%}")
        stdout.print(table)
    console.print(
        f"Compared {found.compared} notebooks in {time.monotonic() - started:.1f} s: {len(found.pairs)} pairs. "
        f"Side by side: {out_dir / 'similarity.html'}",
        highlight=False,
    )
