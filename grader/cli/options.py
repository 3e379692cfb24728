"""The options several commands share, in one place, and the grading context they make."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from grader.cli.output import console
from grader.errors import FAULT_INJECTION_ENV, INJECTABLE_FAULTS, GraderError
from grader.judge.pipeline import GradingContext, GradingOptions, prepare_context
from grader.run.backends import BACKENDS
from grader.run.isolation import Limits
from grader.run.sandbox import sweep_stale_sandboxes
from grader.spec.exercise import DEFAULT_SPEC

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


def out_option(purpose: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True, help=purpose
    )


def grading_options(quick_by_default: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options ``grade`` and ``check`` share; ``check`` is quick unless told --full."""
    return lambda command: _with_grading_options(command, quick_by_default)


def _with_grading_options(command: Callable[..., Any], quick_by_default: bool) -> Callable[..., Any]:
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
        click.option(
            "--private-test",
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            default=None,
            help="An .npz holding x_test and y_test the evaluator measures on instead of the data set's test rows "
            "(and the spec's private_test); never placed where a notebook runs.",
        ),
        BACKEND_OPTION,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def grading_context(
    quick: bool,
    data_path: Path | None,
    timeout: float | None,
    spec_path: Path,
    strict_sandbox: bool,
    accelerate: bool,
    write_limit: float,
    keep_logs: bool,
    backend: str | None,
    private_test: Path | None = None,
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
            private_test=private_test,
        )
        context = prepare_context(options, spec_path, data_path, jobs, start_kernel)
    if context.isolation.missing():
        console.print(
            f"[yellow]warning:[/] notebooks run with {context.isolation.describe()} isolation. See the security model "
            "in the documentation; --strict-sandbox refuses to grade like this.",
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
