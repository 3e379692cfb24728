"""The batch: every notebook graded once, each result stored and reported as soon as it is
ready, unchanged notebooks reused from the store."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from grader import __version__
from grader.batch.executors import Draw, Executor, InProcess, LocalProcesses
from grader.batch.logs import keep_logs
from grader.batch.store import ResultStore, result_key
from grader.ingest.notebook import MAX_NOTEBOOK_BYTES
from grader.ingest.roster import Submitted
from grader.judge.answers import class_sentences, markdown_sentences
from grader.judge.checks import max_points
from grader.judge.pipeline import GradingContext, not_graded_result, unrunnable_result
from grader.judge.results import Graded, GradeRun, SubmissionResult
from grader.judge.written import WrittenGrade
from grader.protocol.text import name_text


def grade_batch(
    submissions: Iterable[Submitted | Path],
    context: GradingContext,
    store: ResultStore,
    force: bool = False,
    on_result: Callable[[Graded, bool], None] = lambda graded, reused: None,
    executor: Executor | None = None,
    logs_out: Path | None = None,
) -> GradeRun:
    """Grade every submission (a notebook alone is its own student's), one result each, each
    stored and reported as soon as it is done.

    A result already in ``store`` for the same notebook and settings is reused
    (``on_result`` is told so) unless ``force``; a duplicate id is an invalid result.
    The rest go to ``executor`` (default: one after another, here); the run lists the
    results in the order given, whatever order they finish in, each with its id and student.
    Logs are kept under ``logs_out`` (see ``grader.batch.logs``).
    """
    ordered = list({item.path: item for item in map(_submitted, submissions)}.values())
    by_path = {item.path: item for item in ordered}
    contents = {item.path: _content(item.path) for item in ordered}  # each file read once
    sentences = {path: _markdown_sentences(content) for path, content in contents.items()}
    context = dataclasses.replace(context, class_text=class_sentences(list(sentences.values())))
    results: dict[Path, SubmissionResult] = {}
    keys: dict[Path, str] = {}
    seen: dict[str, Path] = {}

    def named(graded: Graded, path: Path) -> Graded:
        item = by_path[path]
        result = dataclasses.replace(graded.result, id=item.id, path=name_text(str(path)), student=item.student)
        return dataclasses.replace(graded, result=result)

    for item in ordered:
        if item.id in seen:
            reason = f"{seen[item.id]} has the same id {item.id!r}; rename one of the files"
            graded = named(Graded(unrunnable_result(item.path, "invalid", reason, context)), item.path)
            results[item.path] = graded.result
            on_result(graded, False)
            continue
        seen[item.id] = item.path
        keys[item.path] = result_key(contents[item.path], context, sentences[item.path] & context.class_text)
        stored = None if force else store.get(keys[item.path])
        if stored is not None:
            graded = named(stored, item.path)
            results[item.path] = graded.result
            on_result(graded, True)
    to_grade = [item.path for item in ordered if item.path not in results]
    for path, fresh in (executor or InProcess()).grade(to_grade, context):
        graded = named(fresh, path)
        try:
            if logs_out is not None:
                graded = keep_logs(graded, logs_out, context.options.keep_logs)
            store.put(keys[path], graded)
            on_result(graded, False)
        except Exception as error:  # the grader's own step failed on this notebook: its fault, not the class's
            reason = f"the grader failed on this notebook's result ({type(error).__name__}: {error}); please report it"
            graded = named(Graded(not_graded_result(path, reason, context)), path)
            on_result(graded, False)
        results[path] = graded.result
    return make_run(context, [results[item.path] for item in ordered])


def _submitted(item: Submitted | Path) -> Submitted:
    return item if isinstance(item, Submitted) else Submitted.of(item)


def _content(path: Path) -> bytes:
    """What a grade of ``path`` depends on of the file: its bytes; a link, a file too large or
    unreadable stands as its reason (it is refused, with it, when it is graded)."""
    try:
        if path.is_symlink():
            return b"a symbolic link"
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return f"{path.stat().st_size} bytes".encode()
        return path.read_bytes()
    except OSError as error:
        return str(error).encode()


def _markdown_sentences(content: bytes) -> frozenset[str]:
    """The sentences of a notebook's markdown, read from its JSON as it is (validating it takes
    nbformat seconds on a large notebook, and grading does it); none for what is not one."""
    try:
        notebook = json.loads(content)
        return markdown_sentences(notebook) if isinstance(notebook, dict) else frozenset()
    except Exception:  # not JSON, or a fault of the grader's: the notebook is graded without its class
        return frozenset()


def make_run(
    context: GradingContext,
    results: list[SubmissionResult],
    notices: Sequence[str] = (),
    written: Mapping[str, tuple[WrittenGrade, ...]] | None = None,
    partial: bool = False,
) -> GradeRun:
    """The run so far; ``notices``: what the instructor must do by hand (``Roster.notices``);
    ``written``: the written answers' grades so far (``grader review``)."""
    quick = context.options.quick
    return GradeRun(
        __version__, "quick" if quick else "full", context.spec.name, tuple(results),
        max_points(context.spec, quick), tuple(notices), context.spec.questions, dict(written or {}), partial,
    )  # fmt: skip


def make_executor(
    jobs: int,
    executor: str = "local",
    address: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    draw: Draw | None = None,
) -> Executor:
    """``draw``: what the workers draw of each notebook's pages, where there are workers (one
    process alone draws them where it writes them)."""
    if executor == "ray":
        from grader.batch.ray_cluster import RayCluster  # Ray is an extra: imported only when asked for

        return RayCluster(address, cpus, gpus, local_cpus=jobs, draw=draw)
    return InProcess() if jobs == 1 else LocalProcesses(jobs, draw=draw)
