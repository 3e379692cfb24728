"""Authoring: ``new`` makes an exercise from its solution, ``handout`` writes what students
start from, ``calibrate`` measures the accuracy ranges, ``validate`` proves the exercise."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape
from rich.table import Table

from grader.cli.options import BACKEND_OPTION, DATA_OPTION, SOLUTION_ARGUMENT, SPEC_OPTION
from grader.cli.output import console, native_logs_apart, progress_bar, reports_grader_errors
from grader.errors import GraderError
from grader.judge.pipeline import GradingOptions
from grader.protocol.files import write_atomically
from grader.run.backends import Backend, choose_backend, use_backend_in_this_process
from grader.run.zygote import ZYGOTES
from grader.spec.datasets import load_dataset, load_private_test, locate_data
from grader.spec.exercise import load_spec

if TYPE_CHECKING:
    from grader.assign.draft import ExerciseDraft
    from grader.assign.validate import Finding


@click.command()
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True, help="Runs per model.")
@DATA_OPTION
@SPEC_OPTION
@BACKEND_OPTION
@reports_grader_errors
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
    if spec.data.private_test:  # the ranges are those of the rows models are measured on
        rows, labels = load_private_test(Path(spec.data.private_test), spec.data)
        dataset = replace(dataset, x_test=rows, y_test=labels)
    with progress_bar() as progress:
        task = progress.add_task(f"Training on {chosen.name}", total=seeds * len(spec.fixed_models))

        def on_run(name: str, run: dict[str, Any]) -> None:
            progress.console.print(
                f"{name} seed {run['seed']}: test {spec.data.metric.name} {run['test_accuracy']:.4f}"
            )
            progress.advance(task)

        with native_logs_apart():
            document = run_calibration(spec, dataset, list(range(seeds)), chosen, on_run)
    key = write_calibration(document, spec.calibration_path)
    for model in load_spec(spec_path, key).fixed_models:
        assert model.accuracy is not None
        console.print(
            f"{model.name}: accepted {spec.data.metric.name} {model.accuracy.min:.4f} to {model.accuracy.max:.4f} "
            f"({model.accuracy.derivation})"
        )
    console.print(f"Wrote the runs on {key} into {spec.calibration_path}")


@click.command()
@SOLUTION_ARGUMENT
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the handout [default: SOLUTION's name with _handout].",
)
@reports_grader_errors
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


@click.command("new")
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
@click.option(
    "--force",
    is_flag=True,
    help="Write over an existing spec, handout, calibration (started afresh) and the copies beside the spec.",
)
@click.option(
    "--private-share",
    type=click.FloatRange(min=0, max=1, min_open=True, max_open=True),
    default=None,
    help="Hold back this share of the data file's test rows as a private test set beside the spec (the copy of "
    "the data file beside it, which students get, holds the rest); needs --out in another folder.",
)
@DATA_OPTION
@BACKEND_OPTION
@reports_grader_errors
def new(
    solution: Path, out_path: Path | None, seeds: int, name: str | None, force: bool, private_share: float | None,
    data_path: Path | None, backend: str | None,
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
    from grader.assign.validate import validate_exercise

    chosen = choose_backend(backend)
    use_backend_in_this_process(chosen)
    ZYGOTES.expect_several()  # the solution's run, then the validation's two gradings
    out = out_path or default_spec_path(solution)
    with console.status(f"Running {solution.name} in the sandbox, as a full grade would…"):
        made = new_exercise(solution, out, name, data_path, GradingOptions(backend=chosen.name), force, private_share)
    draft = made.draft
    _print_draft(draft)
    console.print(f"Wrote the spec {made.spec} and the handout {made.handout}.", highlight=False)
    console.print("Review in the spec:", highlight=False)
    for note in draft.review:
        console.print(f"  - {escape(note)}", highlight=False)
    if not seeds:
        console.print(f"Then: grader calibrate --spec {made.spec}, and grader validate --spec {made.spec}")
        return
    _calibrate(made.spec, seeds, chosen, data_path)
    # A spec its own solution fails is never handed over: validated as `grader validate` does.
    with console.status(f"Validating {made.spec}: grading the solution (full) and the handout (quick)…"):
        findings = validate_exercise(made.spec, chosen, data_path)
    if not _print_findings(findings):
        console.print(
            f"[bold red]The spec {escape(str(made.spec))} is not ready[/]: fix what failed above (in the solution, "
            "or in the spec by hand), then run grader validate on it. Do not grade with it before it passes.",
            highlight=False,
        )
        sys.exit(1)
    console.print(f"The exercise of {made.spec} is ready to grade.", highlight=False)


def _print_draft(draft: ExerciseDraft) -> None:
    """What ``new`` read off the solution: a table of its models, then its data."""
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


@click.command()
@SPEC_OPTION
@DATA_OPTION
@BACKEND_OPTION
@reports_grader_errors
def validate(spec_path: Path, data_path: Path | None, backend: str | None) -> None:
    """Prove an exercise before students get it: its data file is present and matches its hash,
    every model has its accuracy range, the solution grades full marks in full mode, and the
    handout runs to the end in quick mode and scores 0 on every model check, each saying what
    to build. Exit 0 when all hold, 1 with the reasons when one does not."""
    from grader.assign.validate import validate_exercise

    chosen = choose_backend(backend)
    ZYGOTES.expect_several()  # the solution, then the handout
    with console.status(f"Validating {spec_path}: grading the solution (full) and the handout (quick)…"):
        findings = validate_exercise(spec_path, chosen, data_path)
    if not _print_findings(findings):
        sys.exit(1)
    console.print(f"The exercise of {spec_path} is ready to grade.", highlight=False)


def _print_findings(findings: tuple[Finding, ...]) -> bool:
    """Print what ``grader validate`` found, one line each; whether all of it holds."""
    for finding in findings:
        mark = "[green]ok[/]" if finding.passed else "[bold red]FAILED[/]"
        console.print(f"{mark} {finding.what}: {escape(finding.detail)}", highlight=False, soft_wrap=True)
    return all(finding.passed for finding in findings)
