"""What every command shares on the way out: the consoles, the exit codes, grader errors shown
as one red line, progress bars, a result's table, and Keras' native logs kept off the terminal."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grader.errors import GraderError
from grader.judge.results import SubmissionResult

EXIT_CHECK_FAILED = 1
EXIT_NOT_GRADED = 2
EXIT_GRADER_ERROR = 3
STATUS_STYLE = {"pass": "green", "fail": "red", "error": "yellow", "skipped": "dim"}

console = Console(stderr=True)
stdout = Console()


def reports_grader_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose GraderError is one red line on the console and exit 3."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except GraderError as error:
            # The message may hold brackets (pip extras, paths): text, not markup.
            console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            sys.exit(EXIT_GRADER_ERROR)

    return wrapper


@contextmanager
def native_logs_apart() -> Iterator[None]:
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


def progress_bar() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def print_result(result: SubmissionResult) -> None:
    """One notebook's checks as a table, then its error, warnings, score and written answers."""
    # What a notebook wrote (its name, its errors, its markdown) is shown, never read as rich's markup
    table = Table(title=f"{escape(result.id)}: {result.status}", title_justify="left")
    for column in ("check", "verdict", "points", "what to do"):
        table.add_column(column, overflow="fold")
    for item in result.checks:
        style = STATUS_STYLE[item.status]
        table.add_row(
            escape(item.id), f"[{style}]{item.status}[/]", f"{item.points:g}/{item.max_points:g}", escape(item.message)
        )
    stdout.print(table)
    if result.error:
        stdout.print(f"[yellow]{escape(result.error)}[/]", highlight=False)
    for warning in result.warnings:
        stdout.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
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
        stdout.print(f"Written answer to {escape(answer.question)}: {found}", highlight=False)
