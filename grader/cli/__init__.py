"""The command line: parses, delegates to the pipeline, shows progress. One module per family
of commands, as the documentation groups them: grading, review, authoring, platforms and
tools; the options they share are in ``options``, what they print in ``output``. The exit
codes are in ``cli``'s help."""

from __future__ import annotations

import click

from grader import __version__
from grader.cli import authoring, grading, platforms, review, tools


@click.group()
@click.version_option(__version__, prog_name="grader")
def cli() -> None:
    """Grade Keras exercise notebooks: architecture, training set-up and real test accuracy.

    \b
    Exit codes:
      0  done (check, validate, github: every check passed)
      1  check, validate or github found a failing check
      2  grade: some notebook could not be graded through a fault of the
         grader (the others are; run it again); gradescope: the notebook could
         not be so graded; or bad usage
      3  the grader could not run at all (data, spec, paths), or check or
         github could not grade the notebook through a fault of its own
    """


for command in (
    grading.grade,
    grading.check,
    grading.similarity,
    review.review,
    authoring.new,
    authoring.handout,
    authoring.calibrate,
    authoring.validate,
    platforms.gradescope,
    platforms.prairielearn,
    platforms.github,
    platforms.export,
    tools.bench,
    tools.zygote,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="grader")
