"""The batch: every notebook graded once, each result stored and reported as soon as it is
ready, unchanged notebooks reused from the store."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

from grader import __version__
from grader.batch.executors import Executor, InProcess, LocalProcesses
from grader.batch.logs import keep_logs
from grader.batch.store import ResultStore, result_key
from grader.ingest.notebook import submission_id
from grader.judge.pipeline import GradingContext, unrunnable_result
from grader.judge.results import Graded, GradeRun, SubmissionResult


def grade_batch(
    paths: Iterable[Path],
    context: GradingContext,
    store: ResultStore,
    force: bool = False,
    on_result: Callable[[Graded, bool], None] = lambda graded, reused: None,
    executor: Executor | None = None,
    logs_out: Path | None = None,
) -> GradeRun:
    """Grade every path, one result each, each stored and reported as soon as it is done.

    A result already in ``store`` for the same notebook and settings is reused
    (``on_result`` is told so) unless ``force``; a duplicate id is an invalid result.
    The rest go to ``executor`` (default: one after another, here); the run lists the
    results in the order of ``paths``, whatever order they finish in. Logs are kept
    under ``logs_out`` (see ``grader.batch.logs``).
    """
    results: dict[Path, SubmissionResult] = {}
    keys: dict[Path, str] = {}
    seen: dict[str, Path] = {}
    ordered = list(dict.fromkeys(paths))
    for path in ordered:
        sid = submission_id(path)
        if sid in seen:
            reason = f"{seen[sid]} has the same id {sid!r}; rename one of the files"
            graded = Graded(unrunnable_result(path, "invalid", reason, context))
            results[path] = graded.result
            on_result(graded, False)
            continue
        seen[sid] = path
        keys[path] = _result_key(path, context)
        stored = None if force else store.get(keys[path])
        if stored is not None:
            graded = dataclasses.replace(stored, result=dataclasses.replace(stored.result, id=sid, path=str(path)))
            results[path] = graded.result
            on_result(graded, True)
    to_grade = [path for path in ordered if path not in results]
    for path, fresh in (executor or InProcess()).grade(to_grade, context):
        graded = keep_logs(fresh, logs_out, context.options.keep_logs) if logs_out else fresh
        store.put(keys[path], graded)
        results[path] = graded.result
        on_result(graded, False)
    return make_run(context, [results[path] for path in ordered])


def _result_key(path: Path, context: GradingContext) -> str:
    try:
        content = path.read_bytes()
    except OSError as error:
        content = str(error).encode()
    return result_key(content, context)


def make_run(context: GradingContext, results: list[SubmissionResult]) -> GradeRun:
    return GradeRun(__version__, "quick" if context.options.quick else "full", context.spec.name, tuple(results))


def make_executor(
    jobs: int, executor: str = "local", address: str | None = None, cpus: float = 1.0, gpus: float = 0.0
) -> Executor:
    if executor == "ray":
        from grader.batch.ray_cluster import RayCluster  # Ray is an extra: imported only when asked for

        return RayCluster(address, cpus, gpus, local_cpus=jobs)
    return InProcess() if jobs == 1 else LocalProcesses(jobs)
