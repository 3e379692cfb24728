"""Tools: ``bench`` times training, plain and through the grader, or a batch of grades;
``zygote`` keeps kernels warm for ``check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from grader.batch.executors import default_jobs
from grader.cli.options import BACKEND_OPTION, DATA_OPTION, SPEC_OPTION, grading_context
from grader.cli.output import native_logs_apart, progress_bar, reports_grader_errors, stdout
from grader.errors import GraderError
from grader.judge.pipeline import GradingContext
from grader.run.backends import choose_backend, use_backend_in_this_process
from grader.run.isolation import Limits
from grader.run.probe import probe_isolation
from grader.run.zygote import ZygoteUnavailable, serve, usable_for
from grader.spec.datasets import load_dataset, locate_data
from grader.spec.exercise import load_spec


@click.command()
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
@reports_grader_errors
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
        context = grading_context(
            quick, data_path, None, spec_path, False, True, write_limit, False, backend, jobs=jobs
        )
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
    with progress_bar() as progress:
        task = progress.add_task(f"Benching on {chosen.name}", total=len(names))

        def on_model(result: ModelBench) -> None:
            progress.console.print(f"{result.model}: {result.speed_up:.2f} times faster through the grader")
            progress.advance(task)

        with native_logs_apart():
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
    with progress_bar() as progress:
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
        f"time besides.\nWhere a grading's seconds went, per notebook: {report.kernel_start_seconds:.2f} s waiting for "
        f"its kernel (request to first cell; the median {report.kernel_start_median_seconds:.2f} s; {report.forked} of "
        f"{report.notebooks} kernels forked from a zygote, whose start each worker's first kernel waits for), "
        f"{report.cells_seconds:.2f} s running its cells ({report.training_seconds:.2f} s of it training), "
        f"{report.grader_seconds:.2f} s of the grader's own.\n"
        f"Seconds per epoch (median, first epochs apart): {epochs or 'none'}.\n{memory}.",
        highlight=False,
    )


@click.command()
@click.argument("socket", type=click.Path(dir_okay=False, path_type=Path))
@BACKEND_OPTION
@reports_grader_errors
def zygote(socket: Path, backend: str | None) -> None:
    """Keep a zygote listening on SOCKET: a process that has imported Keras and its backend
    once and forks each kernel of `grader check` into its sandbox, when check runs with
    $GRADER_ZYGOTE=SOCKET (the Jupyter Check button does this). It runs until its parent ends.
    SOCKET's folder must be yours alone (mode 700)."""
    problem = usable_for(probe_isolation())
    if problem is not None:
        raise GraderError(f"kernels cannot be forked here ({problem}): grader check starts them cold")
    try:
        serve(socket, choose_backend(backend).environment(1))
    except (OSError, ZygoteUnavailable) as error:
        raise GraderError(f"the zygote cannot listen on {socket}: {error}") from None
