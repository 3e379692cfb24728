"""Review: ``review`` grades the written answers of a graded batch, in a browser or a sheet."""

from __future__ import annotations

from pathlib import Path

import click

from grader.cli.options import SPEC_OPTION
from grader.cli.output import console, reports_grader_errors
from grader.errors import GraderError
from grader.protocol.files import write_atomically
from grader.spec.exercise import load_spec


@click.command()
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
@reports_grader_errors
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
            count = import_sheet(_read(import_from), batch, marks)
            console.print(f"Set the grades of {count} answers from {import_from}.")
    finally:
        marks.close()


def _read(sheet: Path) -> bytes:
    """The sheet's bytes, whatever its encoding (``import_sheet`` tells them apart)."""
    try:
        return sheet.read_bytes()
    except OSError as error:
        raise GraderError(f"cannot read the sheet {sheet} ({error.strerror or error}); check its path") from None
