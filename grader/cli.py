"""The command line: parses, delegates to the pipeline, shows progress.

Exit codes: 0 done (``check``: every check passed); 1 ``check`` found a failing
check; 2 ``grade`` could not grade some notebook through a fault of its own (the
others are graded), or bad usage; 3 the grader could not run at all (data, spec,
paths), or ``check`` could not grade the notebook through a fault of its own."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grader import __version__
from grader.batch.executors import default_jobs
from grader.batch.grade import grade_batch, make_executor, make_run
from grader.batch.logs import keep_logs
from grader.batch.store import ResultStore
from grader.errors import FAULT_INJECTION_ENV, INJECTABLE_FAULTS, GraderError
from grader.ingest.roster import Submitted, read_roster
from grader.judge.pipeline import GradingContext, GradingOptions, grade_safely, prepare_context
from grader.judge.results import Graded, SubmissionResult
from grader.judge.written import WrittenGrade
from grader.protocol.files import write_atomically
from grader.reports.similarity import DEFAULT_THRESHOLD, ClassSimilarity, class_similarity, expected_code
from grader.run.backends import BACKENDS, Backend, choose_backend, use_backend_in_this_process
from grader.run.isolation import Limits
from grader.run.sandbox import sweep_stale_sandboxes
from grader.run.warm import KERNELS
from grader.spec.datasets import load_dataset, locate_data
from grader.spec.exercise import DEFAULT_SPEC, Spec, load_spec

EXIT_CHECK_FAILED = 1
EXIT_NOT_GRADED = 2
EXIT_GRADER_ERROR = 3
# How often a long batch refreshes gradebook.csv, index.html and results.json.
SUMMARY_INTERVAL_SECONDS = 30
# What `grader github` writes in the repository: the result, for the workflow's check steps.
GITHUB_RESULTS = "grader-results.json"
STATUS_STYLE = {"pass": "green", "fail": "red", "error": "yellow", "skipped": "dim"}

console = Console(stderr=True)
stdout = Console()


def _reports_grader_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except GraderError as error:
            # The message may hold brackets (pip extras, paths): text, not markup.
            console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            sys.exit(EXIT_GRADER_ERROR)

    return wrapper


DATA_OPTION = click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    help="The data set's .npz file [default: the spec's data file; for a loader, $GRADER_MNIST, Keras' cache, "
    "or a download].",
)
SPEC_OPTION = click.option(
    "--spec",
    "spec_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_SPEC,
    show_default="the MNIST exercise",
    help="The exercise's TOML spec.",
)


BACKEND_OPTION = click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="The Keras backend to train on [default: $KERAS_BACKEND, else TensorFlow if installed, else another].",
)

PATHS_ARGUMENT = click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
SOLUTION_ARGUMENT = click.argument("solution", type=click.Path(path_type=Path, dir_okay=False, exists=True))


def _out_option(purpose: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True, help=purpose
    )


def _grading_options(quick_by_default: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options ``grade`` and ``check`` share; ``check`` is quick unless told --full."""
    return lambda command: _with_options(command, quick_by_default)


def _with_options(command: Callable[..., Any], quick_by_default: bool) -> Callable[..., Any]:
    options = [
        click.option(
            "--quick/--full",
            default=quick_by_default,
            show_default=True,
            help="--quick: every fit runs 1 epoch on a slice and accuracy is skipped; --full trains as written.",
        ),
        DATA_OPTION,
        click.option(
            "--timeout",
            type=click.FloatRange(min=1),
            default=None,
            help="Seconds one notebook may run in all [default: 300 quick, 1800 full].",
        ),
        SPEC_OPTION,
        click.option(
            "--strict-sandbox", is_flag=True, help="Refuse to grade unless every isolation layer is available."
        ),
        click.option(
            "--no-accelerate",
            "accelerate",
            flag_value=False,
            default=True,
            help="Run every compile and fit exactly as written (slower; the results are the same).",
        ),
        click.option(
            "--write-limit",
            type=click.FloatRange(min=0.01),
            default=Limits().write_bytes / 2**30,
            show_default=True,
            help="GiB a notebook may write where the grader reads (its exported models, its folder).",
        ),
        click.option(
            "--keep-logs",
            is_flag=True,
            help="Keep the kernel's and evaluator's logs of every notebook (always kept when the grader fails).",
        ),
        BACKEND_OPTION,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _context(
    quick: bool,
    data_path: Path | None,
    timeout: float | None,
    spec_path: Path,
    strict_sandbox: bool,
    accelerate: bool,
    write_limit: float,
    keep_logs: bool,
    backend: str | None,
    jobs: int = 1,
    start_kernel: bool = False,
) -> GradingContext:
    """The grading context of the options given; ``start_kernel``: a notebook is graded in this
    process next, so its kernel starts while the data set is read."""
    injected = os.environ.get(FAULT_INJECTION_ENV)
    if injected:
        unknown = sorted(set(injected.split(",")) - set(INJECTABLE_FAULTS))
        if unknown:
            raise GraderError(f"{FAULT_INJECTION_ENV}={injected}: choose from {', '.join(INJECTABLE_FAULTS)}.")
        console.print(
            f"[yellow]warning:[/] {FAULT_INJECTION_ENV}={injected}: the grader fails on purpose (a test aid)."
        )
    swept = sweep_stale_sandboxes()
    if swept:
        console.print(
            f"[yellow]note:[/] removed {len(swept)} sandbox folder(s) left in {swept[0].parent} by a grader that was "
            "killed, and stopped whatever still ran in them.",
            highlight=False,
            soft_wrap=True,
        )
    with console.status("Loading the spec and the data set…"):
        options = GradingOptions(
            quick=quick,
            timeout=timeout,
            strict_sandbox=strict_sandbox,
            accelerate=accelerate,
            keep_logs=keep_logs,
            limits=Limits(write_bytes=int(write_limit * 2**30)),
            backend=backend,
        )
        context = prepare_context(options, spec_path, data_path, jobs, start_kernel)
    if context.isolation.missing():
        console.print(
            f"[yellow]warning:[/] notebooks run with {context.isolation.describe()} isolation. See the README's "
            "security model; --strict-sandbox refuses to grade like this.",
            highlight=False,
            soft_wrap=True,
        )
    calibration = context.spec.calibration.key
    if calibration and calibration != context.backend.key:
        console.print(
            f"[yellow]note:[/] the spec has no calibration on {context.backend.key}: its accuracy ranges and epoch "
            f"times are those measured on {calibration} (`grader calibrate --backend {context.backend.name}` "
            "measures them here).",
            highlight=False,
            soft_wrap=True,
        )
    return context


@click.group()
@click.version_option(__version__, prog_name="grader")
def cli() -> None:
    """Grade Keras exercise notebooks: architecture, training set-up and real test accuracy."""


@cli.command()
@PATHS_ARGUMENT
@_out_option("Folder for results.json, gradebook.csv, the HTML reports and the results store.")
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
@_grading_options(quick_by_default=False)
@_reports_grader_errors
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
    from grader.reports.outputs import DrawnCurves, refresh_standings, write_page, write_summaries
    from grader.reports.pages import draw_parts, improvement_standing
    from grader.review.marks import Marks

    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise GraderError("--executor ray needs Ray: pip install 'keras-exercise-grader[ray]'.") from None
    elif address is not None:
        raise click.UsageError("--address needs --executor ray.")
    context = _context(**settings, jobs=jobs)
    assignment = Assignment(canvas_assignment or context.spec.name, canvas_assignment_id)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GraderError(f"--out {out_dir}: cannot create the folder ({error.strerror}).") from None
    with tempfile.TemporaryDirectory(prefix="grader-unpacked-") as unpacked:  # zips are unpacked here
        roster = read_roster(list(paths), Path(unpacked), context.spec.model_names)
        for note in roster.notes:
            console.print(f"[yellow]not graded:[/] {note}", highlight=False, soft_wrap=True)
        for notice in roster.notices:
            console.print(f"[yellow]by hand:[/] {notice}", highlight=False, soft_wrap=True)
        notebooks = roster.submissions
        results: list[SubmissionResult] = []
        standings: dict[str, str | None] = {}  # the improvement standing each page shows
        curves = DrawnCurves(context.spec)  # the plots the workers drew, for the pages drawn again at the end
        reused = 0
        summaries_written = time.monotonic()
        written: dict[str, tuple[WrittenGrade, ...]] = {}  # kept by `grader review`, whatever is regraded
        with closing(ResultStore(out_dir)) as store, closing(Marks(out_dir, context.spec.questions)) as marks, \
                _progress() as progress:  # fmt: skip
            where = "on Ray" if executor == "ray" else f"{jobs} at a time" if jobs > 1 else ""
            task = progress.add_task(f"Grading {where}".strip(), total=len(notebooks))

            def on_result(graded: Graded, was_reused: bool) -> None:
                nonlocal reused, summaries_written
                reused += was_reused
                results.append(graded.result)
                written.update(marks.grades({graded.result.id: graded.result.answers}))
                run_so_far = make_run(context, results, roster.notices, written, partial)
                problem = write_page(
                    graded.result, graded.notebook, run_so_far, context.spec, out_dir, was_reused, graded.drawings
                )
                standings[graded.result.id] = improvement_standing(graded.result, run_so_far, context.spec)
                curves.keep(graded.result.id, graded.drawings)
                # The class files cover every result so far: rewritten now and then, not per result.
                if time.monotonic() - summaries_written > SUMMARY_INTERVAL_SECONDS:
                    problem = write_summaries(run_so_far, context.spec, out_dir, assignment) or problem
                    summaries_written = time.monotonic()
                progress.console.print(_summary_line(graded.result, was_reused), highlight=False)
                if problem:
                    progress.console.print(f"[yellow]warning:[/] {problem}; please report it", highlight=False)
                progress.advance(task)

            chosen = make_executor(jobs, executor, address, cpus_per_task, gpus_per_task, draw_parts)
            run = grade_batch(notebooks, context, store, force, on_result, chosen, logs_out=out_dir)
            run = dataclasses.replace(run, notices=roster.notices, written=written, partial=partial)
            refresh_standings(run, context.spec, out_dir, standings, curves)
        similar = _similar_notebooks(notebooks, context.spec) if similarity else None
        problem = write_summaries(run, context.spec, out_dir, assignment, similar)
        if problem:
            console.print(f"[yellow]warning:[/] {problem}; please report it", highlight=False)
    if reused:
        console.print(f"Reused {reused} earlier results of unchanged notebooks (--force regrades them).")
    not_graded = [result for result in results if result.fault == "grader"]
    console.print(
        f"Graded {len(results) - len(not_graded)} of {len(results)} submissions ({context.options.mode} mode). "
        f"Reports: {out_dir / 'index.html'}"
    )
    ungraded = sum(len(run.ungraded(result)) for result in run.submissions if result.score is not None)
    if ungraded and not partial:
        console.print(
            f"{ungraded} written answers are not graded yet: grade them with `grader review {out_dir}`. Until then "
            "the gradebooks leave those students' totals blank (--partial gives the code's points alone).",
            highlight=False,
            soft_wrap=True,
        )
    if not_graded:
        console.print(
            f"[bold red]{len(not_graded)} could not be graded through a fault of the grader[/] (no score, blank in "
            f"the gradebook; the next run grades them again): {', '.join(r.id for r in not_graded)}. "
            f"Why: {out_dir / 'logs'}",
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
            f"[yellow]warning:[/] the notebooks could not be compared ({type(error).__name__}: {error}); "
            "please report it",
            highlight=False,
        )
        return None
    if found.pairs:
        console.print(
            f"[yellow]{len(found.pairs)} pairs of notebooks share {threshold:.0%} of their own code or more:[/] "
            + ", ".join(f"{pair.first} and {pair.second}" for pair in found.pairs[:5])
            + (" …" if len(found.pairs) > 5 else ""),
            highlight=False,
            soft_wrap=True,
        )
    return found


@contextmanager
def _native_logs_apart() -> Iterator[None]:
    """While a tool runs Keras in this process: TensorFlow's and absl's C++ start-up lines go to
    file descriptor 2 whatever ``TF_CPP_MIN_LOG_LEVEL`` says, so fd 2 goes to a log file and the
    console keeps the terminal. The log is kept, and named, only if the tool fails."""
    try:
        terminal_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a real stream (a test's runner): nothing to keep apart
        yield
        return
    saved = os.dup(terminal_fd)
    terminal = os.fdopen(os.dup(terminal_fd), "w", buffering=1)
    log = tempfile.NamedTemporaryFile(prefix="grader-native-", suffix=".log", delete=False)
    console.file = terminal
    os.dup2(log.fileno(), terminal_fd)
    try:
        yield
    except BaseException:
        console.print(f"What TensorFlow and the other native libraries printed: {log.name}", highlight=False)
        raise
    else:
        os.unlink(log.name)
    finally:
        os.dup2(saved, terminal_fd)
        os.close(saved)
        console.file = None  # type: ignore[assignment]  # back to sys.stderr
        terminal.close()
        log.close()


def _progress() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def _summary_line(result: SubmissionResult, reused: bool = False) -> str:
    took = "reused" if reused else f"{result.seconds:.0f} s"
    if result.score is None:
        return f"{result.id:<28} [bold red]not graded[/] (a fault of the grader's: {result.logs or 'no logs'})"
    failed = [check.id for check in result.checks if check.status in ("fail", "error")]
    detail = f"  [red]{', '.join(failed)}[/]" if failed else ""
    return f"{result.id:<28} {result.status:<8} {result.score:g}/{result.max_score:g}  ({took}){detail}"


@cli.command()
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (the schema of results.json).")
@_grading_options(quick_by_default=True)
@_reports_grader_errors
def check(notebook: Path, as_json: bool, **settings: Any) -> None:
    """Grade one notebook as the instructor's `grade` would, and show what to fix.

    Quick by default: seconds, not minutes. Exit 0 when every check passes, 1 otherwise,
    3 when a fault of the grader's kept it from grading the notebook.
    """
    context = _context(**settings, start_kernel=True)
    # The kernel started with the context is this notebook's, or nobody's.
    with console.status(f"Running {notebook.name} ({context.options.mode} mode)…"), closing(KERNELS):
        graded = grade_safely(notebook, context)
    logs_out = Path(tempfile.mkdtemp(prefix="grader-logs-"))
    result = keep_logs(graded, logs_out, context.options.keep_logs).result
    if result.logs is None:
        logs_out.rmdir()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_result(result)
    if result.logs is not None:
        console.print(f"The grader's logs of this notebook: {logs_out / result.logs}", highlight=False)
    if result.fault == "grader":
        sys.exit(EXIT_GRADER_ERROR)
    sys.exit(0 if result.all_passed else EXIT_CHECK_FAILED)


def print_result(result: SubmissionResult) -> None:
    table = Table(title=f"{result.id}: {result.status}", title_justify="left")
    for column in ("check", "verdict", "points", "what to do"):
        table.add_column(column, overflow="fold")
    for item in result.checks:
        style = STATUS_STYLE[item.status]
        table.add_row(item.id, f"[{style}]{item.status}[/]", f"{item.points:g}/{item.max_points:g}", item.message)
    stdout.print(table)
    if result.error:
        stdout.print(f"[yellow]{result.error}[/]", highlight=False)
    for warning in result.warnings:
        stdout.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if result.score is None:
        stdout.print("Score: [bold]none[/]: not graded, through no fault of the notebook's")
    else:
        stdout.print(f"Score: [bold]{result.score:g} / {result.max_score:g}[/]")
    for answer in result.answers:
        # The written answers are graded by hand: a student sees here which ones the grader found.
        found = (
            f"found ({answer.found_by}, cells {', '.join(map(str, answer.cells))})"
            if answer.answered
            else "no answer found"
        )
        stdout.print(f"Written answer to {answer.question}: {found}", highlight=False)


@cli.command()
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True, help="Runs per model.")
@DATA_OPTION
@SPEC_OPTION
@BACKEND_OPTION
@_reports_grader_errors
def calibrate(seeds: int, data_path: Path | None, spec_path: Path, backend: str | None) -> None:
    """Train every reference model with several seeds on the full data, on the backend chosen;
    write their runs into the spec's calibration, beside those of other backends and devices."""
    chosen = choose_backend(backend)
    use_backend_in_this_process(chosen)
    _calibrate(spec_path, seeds, chosen, data_path)


def _calibrate(spec_path: Path, seeds: int, chosen: Backend, data_path: Path | None) -> None:
    """``seeds`` runs of each of the spec's fixed models on ``chosen`` (Keras runs on it in this
    process), written into its calibration file; the ranges they give, printed."""
    from grader.tools.calibrate import calibrate as run_calibration
    from grader.tools.calibrate import write_calibration

    spec = load_spec(spec_path)
    if spec.calibration_path is None:
        raise GraderError(f'the spec {spec_path} names no calibration file: add [accuracy] calibration = "FILE".')
    dataset = load_dataset(locate_data(spec.data, data_path), spec.data)
    with _progress() as progress:
        task = progress.add_task(f"Training on {chosen.name}", total=seeds * len(spec.fixed_models))

        def on_run(name: str, run: dict[str, Any]) -> None:
            progress.console.print(
                f"{name} seed {run['seed']}: test {spec.data.metric.name} {run['test_accuracy']:.4f}"
            )
            progress.advance(task)

        with _native_logs_apart():
            document = run_calibration(spec, dataset, list(range(seeds)), chosen, on_run)
    key = write_calibration(document, spec.calibration_path)
    for model in load_spec(spec_path, key).fixed_models:
        assert model.accuracy is not None
        console.print(
            f"{model.name}: accepted {spec.data.metric.name} {model.accuracy.min:.4f} to {model.accuracy.max:.4f} "
            f"({model.accuracy.derivation})"
        )
    console.print(f"Wrote the runs on {key} into {spec.calibration_path}")


@cli.command()
@click.option("--epochs", type=click.IntRange(min=2), default=5, show_default=True, help="Epochs per model and way.")
@click.option("--model", "models", multiple=True, help="A model of the spec to bench (repeat); default: all of them.")
@click.option(
    "--batch",
    "copies",
    type=click.IntRange(min=1),
    help="Instead: grade this many copies of a notebook as `grade` would, and time the batch.",
)
@click.option(
    "--notebook",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --batch: the notebook [default: the spec's solution].",
)
@click.option("--jobs", type=click.IntRange(min=1), default=default_jobs, show_default="as for grade")
@click.option("--quick/--full", default=False, show_default=True, help="With --batch: how the copies are graded.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@DATA_OPTION
@SPEC_OPTION
@BACKEND_OPTION
@_reports_grader_errors
def bench(
    epochs: int,
    models: tuple[str, ...],
    copies: int | None,
    notebook: Path | None,
    jobs: int,
    quick: bool,
    as_json: bool,
    data_path: Path | None,
    spec_path: Path,
    backend: str | None,
) -> None:
    """Time epochs of each reference model: plain Keras, then through the grader's instrumentation.
    With --batch: grades per hour, seconds per epoch, overhead and GPU memory per notebook."""
    if copies is not None:
        write_limit = Limits().write_bytes / 2**30
        context = _context(quick, data_path, None, spec_path, False, True, write_limit, False, backend, jobs)
        _bench_batch(copies, notebook or context.spec.solution, jobs, as_json, context)
        return
    from grader.tools.bench import ModelBench, run_bench

    chosen = choose_backend(backend)
    use_backend_in_this_process(chosen)
    spec = load_spec(spec_path, chosen.key)
    fixed = [model.name for model in spec.fixed_models]
    unknown = sorted(set(models) - set(fixed))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} not a fixed model of the spec; choose from {', '.join(fixed)}")
    names = list(models) or fixed
    dataset = load_dataset(locate_data(spec.data, data_path), spec.data)
    with _progress() as progress:
        task = progress.add_task(f"Benching on {chosen.name}", total=len(names))

        def on_model(result: ModelBench) -> None:
            progress.console.print(f"{result.model}: {result.speed_up:.2f} times faster through the grader")
            progress.advance(task)

        with _native_logs_apart():
            report = run_bench(spec, dataset, epochs, names, chosen, on_model)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    table = Table(title=f"Seconds per epoch over {epochs} epochs (first epoch apart: it builds the graph)")
    for column in ("model", "plain: first", "plain: median (min-max)", "grader: first", "grader: median (min-max)"):
        table.add_column(column, justify="right")
    table.add_column("speed-up", justify="right")
    for result in report.models:
        plain, graded = result.plain, result.instrumented
        table.add_row(
            result.model,
            f"{plain.first:.2f}",
            f"{plain.median:.2f} ({plain.min:.2f}-{plain.max:.2f})",
            f"{graded.first:.2f}",
            f"{graded.median:.2f} ({graded.min:.2f}-{graded.max:.2f})",
            f"{result.speed_up:.2f}x",
        )
    stdout.print(table)
    stdout.print(_describe_machine(report.machine), highlight=False)


def _describe_machine(machine: dict[str, Any]) -> str:
    backend = machine["backend"]
    return (
        f"{machine['cpu']}, {machine['cores']} cores, GPUs: {', '.join(machine['gpus']) or 'none'}; "
        f"Python {machine['python']}, Keras {machine['keras']} on {backend} {machine[backend]}"
    )


def _bench_batch(copies: int, notebook: Path | None, jobs: int, as_json: bool, context: GradingContext) -> None:
    from grader.tools.throughput import bench_batch

    if notebook is None:
        raise GraderError(f"the spec {context.spec.path} names no solution notebook: pass one with --notebook.")
    with _progress() as progress:
        task = progress.add_task(f"Grading {copies} copies of {notebook.name}, {jobs} at a time", total=copies)
        report = bench_batch(notebook, copies, jobs, context, lambda graded, reused: progress.advance(task))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    memory = (
        f"{report.gpu_mib_per_notebook:,.0f} MiB of GPU memory per notebook at most, {report.gpu_mib_peak:,.0f} MiB "
        "in all at the peak"
        if report.gpu_mib_per_notebook is not None and report.gpu_mib_peak is not None
        else "GPU memory: not measured (no nvidia-smi, or it shows no processes)"
    )
    epochs = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in report.epoch_seconds.items())
    stdout.print(
        f"{report.graded} of {report.notebooks} graded ({report.mode} mode, {report.backend}, {report.jobs} at a "
        f"time) in {report.wall_seconds:.1f} s: {report.grades_per_hour:,.0f} grades per hour.\n"
        f"Per notebook: {report.training_seconds:.1f} s training, {report.overhead_seconds:.1f} s of a worker's "
        f"time besides.\nSeconds per epoch (median, first epochs apart): {epochs or 'none'}.\n{memory}.",
        highlight=False,
    )


@cli.command()
@PATHS_ARGUMENT
@_out_option("Folder for similarity.html.")
@click.option(
    "--threshold",
    type=click.FloatRange(min=0, max=1),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="The share of each notebook's own code found in the other from which a pair is listed.",
)
@SPEC_OPTION
@_reports_grader_errors
def similarity(paths: tuple[Path, ...], out_dir: Path, threshold: float, spec_path: Path) -> None:
    """List the pairs of notebooks that share code beyond the handout's and the solution's.

    Reads what ``grade`` reads (folders, notebooks, an LMS's download), one notebook per student;
    writes OUT/similarity.html with the shared code side by side and prints the pairs.
    """
    from grader.reports.pages import similarity_page

    spec = load_spec(spec_path)
    with tempfile.TemporaryDirectory(prefix="grader-unpacked-") as unpacked:
        roster = read_roster(list(paths), Path(unpacked), spec.model_names)
        for note in roster.notes:
            console.print(f"[yellow]not compared:[/] {note}", highlight=False, soft_wrap=True)
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
            table.add_row(pair.first, pair.second, f"{pair.shares[0]:.0%} / {pair.shares[1]:.0%}")
        stdout.print(table)
    console.print(
        f"Compared {found.compared} notebooks in {time.monotonic() - started:.1f} s: {len(found.pairs)} pairs. "
        f"Side by side: {out_dir / 'similarity.html'}",
        highlight=False,
    )


@cli.command()
@click.argument("out_dir", metavar="OUT", type=click.Path(path_type=Path, file_okay=False), default=Path("reports"))
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port to listen on (default: a free one).")
@click.option("--no-browser", is_flag=True, help="Print the address only; do not open a browser.")
@click.option(
    "--export",
    "export_to",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write every answer to this CSV (a column per rubric item) and exit.",
)
@click.option(
    "--import",
    "import_from",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Read the grades of a CSV written by --export (items marked x; the points are recomputed) and exit.",
)
@SPEC_OPTION
@_reports_grader_errors
def review(
    out_dir: Path, port: int, no_browser: bool, export_to: Path | None, import_from: Path | None, spec_path: Path
) -> None:
    """Grade the written answers of the batch graded into OUT, question by question, in a browser.

    Serves a local web app on 127.0.0.1 (the address, with its token, is printed): answers in
    groups, the grader's measurements beside each, a rubric editable while grading. Every change
    is saved at once in OUT/results.sqlite. With --export or --import, a spreadsheet round trip
    instead.
    """
    from grader.review.app import serve
    from grader.review.batch import ReviewBatch
    from grader.review.marks import Marks
    from grader.review.sheet import export_sheet, import_sheet

    if export_to is not None and import_from is not None:
        raise click.UsageError("give --export or --import, not both.")
    if export_to is None and import_from is None:

        def announce(address: str) -> None:
            console.print(f"Reviewing {out_dir} (Ctrl-C stops): {address}", highlight=False, soft_wrap=True)

        serve(out_dir, port, not no_browser, announce, load_spec(spec_path))
        return
    batch = ReviewBatch.load(out_dir)
    marks = Marks(out_dir, batch.questions)
    try:
        if export_to is not None:
            write_atomically(export_to, export_sheet(batch, marks))
            console.print(f"Wrote {len(batch.submissions) * len(batch.questions)} answers to {export_to}.")
        elif import_from is not None:
            count = import_sheet(import_from.read_text(encoding="utf-8-sig"), batch, marks)
            console.print(f"Set the grades of {count} answers from {import_from}.")
    finally:
        marks.close()


@cli.command()
@SOLUTION_ARGUMENT
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the handout [default: SOLUTION's name with _handout].",
)
@_reports_grader_errors
def handout(solution: Path, out_path: Path | None) -> None:
    """Write the handout of an exercise from its solution notebook.

    Every region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's markers;
    otter's ``# BEGIN SOLUTION`` too) becomes ``# YOUR CODE HERE`` (in markdown, "YOUR ANSWER
    HERE"), and outputs are cleared; the rest, the written questions included, is kept.
    """
    import nbformat

    from grader.assign.handout import make_handout

    try:
        notebook = nbformat.read(solution, as_version=4)  # type: ignore[no-untyped-call]
    except Exception as error:  # nbformat raises several kinds for a file that is not a notebook
        raise GraderError(f"{solution} is not a readable notebook ({type(error).__name__}: {error}).") from None
    out = out_path or solution.with_name(f"{solution.stem}_handout.ipynb")
    if out.resolve() == solution.resolve():
        raise click.UsageError("--out names the solution itself; choose another file.")
    write_atomically(out, nbformat.writes(make_handout(notebook)))  # type: ignore[no-untyped-call]
    console.print(f"Wrote the handout {out}.", highlight=False)


@cli.command("new")
@SOLUTION_ARGUMENT
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The spec to write [default: beside SOLUTION, its name without _solution, as .toml].",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Calibration runs of each model (0: none yet; run `grader calibrate` later).",
)
@click.option("--name", help="The exercise's title [default: the solution's first heading].")
@click.option("--force", is_flag=True, help="Write over an existing spec (its calibration is started afresh).")
@DATA_OPTION
@BACKEND_OPTION
@_reports_grader_errors
def new(
    solution: Path, out_path: Path | None, seeds: int, name: str | None, force: bool, data_path: Path | None,
    backend: str | None,
) -> None:  # fmt: skip
    """Make an exercise from its solution notebook: run it in the sandbox as a full grade would,
    and write a commented spec of every model it trained (layers, parameters, optimizer, loss,
    batch size, epochs), its data and how it prepared its inputs; the handout (the solution
    without its ``### BEGIN SOLUTION`` regions); and the calibration of each model.

    The data is a ``keras.datasets`` loader the solution calls, or an .npz file beside it in
    Keras' layout (x_train, y_train, x_test, y_test) that it opens: the file is copied beside the
    spec, and placed read-only in the folder of every notebook graded. A loader other than
    MNIST's is served from the arrays given with --data (an .npz in Keras' layout), copied
    beside the spec too. Review the spec, then run `grader validate` on it."""
    from grader.assign.new import default_spec_path, new_exercise

    chosen = choose_backend(backend)
    use_backend_in_this_process(chosen)
    out = out_path or default_spec_path(solution)
    with console.status(f"Running {solution.name} in the sandbox, as a full grade would…"):
        made = new_exercise(solution, out, name, data_path, GradingOptions(backend=chosen.name), force)
    draft = made.draft
    table = Table(title=f"{draft.name}: what the solution trained", title_justify="left")
    for column in ("model", "layers", "params", "optimizer", "loss", "batch", "epochs"):
        table.add_column(column, justify="right" if column in ("params", "batch", "epochs") else "left")
    for model in draft.models:
        table.add_row(
            model.name, "\n".join(layer.describe() for layer in model.layers), f"{model.params:,}",
            f"{model.optimizer} ({model.learning_rate:g})", model.loss, str(model.batch_size), str(model.epochs),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"Data: {draft.source.describe()}, {draft.train_samples:,} training and {draft.test_samples:,} test rows "
        f"of shape {draft.image_shape}, "
        f"{f'{draft.classes} classes' if draft.task == 'classification' else 'a number to predict per row'}; "
        f"prepared as {draft.preparation}.",
        highlight=False,
    )
    console.print(f"Wrote the spec {made.spec} and the handout {made.handout}.", highlight=False)
    if seeds:
        _calibrate(made.spec, seeds, chosen, data_path)
    console.print("Review in the spec:", highlight=False)
    for note in draft.review:
        console.print(f"  - {escape(note)}", highlight=False)
    console.print(f"Then: grader validate --spec {made.spec}", highlight=False)


@cli.command()
@SPEC_OPTION
@DATA_OPTION
@BACKEND_OPTION
@_reports_grader_errors
def validate(spec_path: Path, data_path: Path | None, backend: str | None) -> None:
    """Prove an exercise before students get it: its data file is present and matches its hash,
    every model has its accuracy range, the solution grades full marks in full mode, and the
    handout runs to the end in quick mode and scores 0 on every model check, each saying what
    to build. Exit 0 when all hold, 1 with the reasons when one does not."""
    from grader.assign.validate import validate_exercise

    chosen = choose_backend(backend)
    with console.status(f"Validating {spec_path}: grading the solution (full) and the handout (quick)…"):
        findings = validate_exercise(spec_path, chosen, data_path)
    for finding in findings:
        mark = "[green]ok[/]" if finding.passed else "[bold red]FAILED[/]"
        console.print(f"{mark} {finding.what}: {escape(finding.detail)}", highlight=False, soft_wrap=True)
    if not all(finding.passed for finding in findings):
        sys.exit(1)
    console.print(f"The exercise of {spec_path} is ready to grade.", highlight=False)


# -- autograder platforms ---------------------------------------------------------------


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
    context = _context(**settings, start_kernel=True)
    with closing(KERNELS):  # the kernel started with the context is this submission's, or nobody's
        result = grade_submission_folder(folder, context, logs_out).result
    print_result(result)
    if result.logs:
        console.print(f"The grader's logs of this notebook: {logs_out / result.logs}", highlight=False)
    return result, time.monotonic() - started


@cli.command()
@_root_option("/autograder")
@click.option(
    "--visibility",
    type=click.Choice(["visible", "hidden", "after_due_date", "after_published"]),
    default="visible",
    show_default=True,
    help="When students see the tests.",
)
@_grading_options(quick_by_default=True)
@_reports_grader_errors
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


@cli.command()
@_root_option("/grade")
@_grading_options(quick_by_default=True)
@_reports_grader_errors
def prairielearn(root: Path, **settings: Any) -> None:
    """PrairieLearn's external grader: grade ROOT/student, write ROOT/results/results.json.

    A fault of the grader's makes the submission not gradable: no points lost, no attempt spent.
    """
    from grader.platforms.results import prairielearn_results

    result, _ = _grade_for_platform(root / "student", root / "results", settings)
    (root / "results").mkdir(parents=True, exist_ok=True)
    results = prairielearn_results(result, load_spec(settings["spec_path"]))
    (root / "results" / "results.json").write_text(json.dumps(results) + "\n")


@cli.command()
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
@_grading_options(quick_by_default=True)
@_reports_grader_errors
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
        console.print(f"[bold red]error:[/] {results_path}: no graded result to read ({error}); grade first.")
        return EXIT_GRADER_ERROR
    if result.fault == "grader":
        console.print(f"[bold red]not graded:[/] {result.error}", highlight=False)
        return EXIT_GRADER_ERROR
    check = next((check for check in result.checks if check.id == check_id), None)
    if check is None:
        known = ", ".join(check.id for check in result.checks)
        console.print(f"[bold red]error:[/] no check {check_id!r} in {results_path}; its checks: {known}")
        return EXIT_GRADER_ERROR
    stdout.print(f"{check.id}: {check.status}, {check.points:g}/{check.max_points:g}. {check.message}", highlight=False)
    return 0 if check.status == "pass" else EXIT_CHECK_FAILED


@cli.command()
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
@_reports_grader_errors
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


def main() -> None:
    cli(prog_name="grader")
