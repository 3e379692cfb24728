"""Figures about a whole class, from its results: what the class page shows."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from grader.judge.results import GradeRun

# Tukey's fences: a value further than this many interquartile ranges outside
# the middle half is an outlier. Fewer values than MIN_VALUES mark none.
FENCE_IQRS = 1.5
MIN_VALUES_FOR_OUTLIERS = 4
# Smallest spreads worth calling unusual, so that near-equal values are not
# outliers of a near-zero interquartile range: accuracy points, and a share of
# the median epoch time (timings jitter by that much).
ACCURACY_SPREAD_FLOOR = 0.005
EPOCH_TIME_SPREAD_FLOOR = 0.1


@dataclass(frozen=True)
class Point:
    submission: str
    value: float
    outlier: bool


@dataclass(frozen=True)
class CheckRate:
    check: str
    passed: int
    counted: int  # submissions where the check ran (not skipped)

    @property
    def rate(self) -> float:
        return self.passed / self.counted if self.counted else 0.0


@dataclass(frozen=True)
class ClassSummary:
    submissions: int
    # Of the submissions that were graded; those a fault of the grader's kept from it are apart.
    scores: tuple[float, ...]
    max_score: float
    not_graded: tuple[str, ...]
    statuses: dict[str, int]
    check_rates: tuple[CheckRate, ...]
    # Per model: the grader's test measurement (the exercise's metric), and the typical epoch
    # time, of each submission that has one.
    test_values: dict[str, tuple[Point, ...]]
    epoch_seconds: dict[str, tuple[Point, ...]]


def outlier_flags(values: Sequence[float], spread_floor: float = 0.0) -> list[bool]:
    """Which values lie outside Tukey's fences (the interquartile range at least ``spread_floor``)."""
    if len(values) < MIN_VALUES_FOR_OUTLIERS:
        return [False] * len(values)
    low_quartile, _, high_quartile = statistics.quantiles(values, n=4, method="inclusive")
    spread = FENCE_IQRS * max(high_quartile - low_quartile, spread_floor)
    return [not (low_quartile - spread <= value <= high_quartile + spread) for value in values]


def typical_epoch_seconds(epoch_times: Sequence[float]) -> float | None:
    """The median epoch time, leaving out the first epoch (graph tracing) when there are others."""
    if not epoch_times:
        return None
    return statistics.median(epoch_times[1:] or epoch_times)


def _points(values: dict[str, float], spread_floor: float) -> tuple[Point, ...]:
    flags = outlier_flags(list(values.values()), spread_floor)
    return tuple(
        Point(submission, value, flag) for (submission, value), flag in zip(values.items(), flags, strict=True)
    )


def summarize(run: GradeRun) -> ClassSummary:
    results = run.submissions
    statuses: dict[str, int] = {}
    for result in results:
        statuses[result.status] = statuses.get(result.status, 0) + 1
    check_ids = list(dict.fromkeys(check.id for result in results for check in result.checks))
    rates = []
    for check_id in check_ids:
        verdicts = [check.status for result in results for check in result.checks if check.id == check_id]
        counted = [status for status in verdicts if status != "skipped"]
        rates.append(CheckRate(check_id, counted.count("pass"), len(counted)))
    model_names = list(dict.fromkeys(name for result in results for name in result.models))
    test_values = {}
    epoch_seconds = {}
    for name in model_names:
        records = {result.id: result.models[name] for result in results if name in result.models}
        test_values[name] = _points(
            {sid: record.test_value for sid, record in records.items() if record.test_value is not None},
            ACCURACY_SPREAD_FLOOR,
        )
        times = {sid: typical_epoch_seconds(record.epoch_times) for sid, record in records.items()}
        timed = {sid: seconds for sid, seconds in times.items() if seconds is not None}
        floor = EPOCH_TIME_SPREAD_FLOOR * statistics.median(timed.values()) if timed else 0.0
        epoch_seconds[name] = _points(timed, floor)
    return ClassSummary(
        submissions=len(results),
        scores=tuple(result.score for result in results if result.score is not None),
        max_score=max((result.max_score for result in results if result.max_score is not None), default=0.0),
        not_graded=tuple(result.id for result in results if result.fault == "grader"),
        statuses=statuses,
        check_rates=tuple(rates),
        test_values=test_values,
        epoch_seconds=epoch_seconds,
    )


@dataclass(frozen=True)
class Standing:
    """One submission's improvement on the class's leaderboard."""

    submission: str
    variable: str | None
    accuracy: float | None
    params: int | None
    epoch_seconds: float | None
    rank: int


def leaderboard(run: GradeRun, model: str) -> tuple[Standing, ...]:
    """Every graded improvement called ``model`` whose training passed its check (a model
    trained on the test set has no place on it), best first: by the accuracy the grader
    measured (none in quick mode), then by fewer parameters."""
    entries = [
        (result.id, record)
        for result in run.submissions
        if (record := result.models.get(model)) is not None
        and record.architecture is not None
        and result.trained_fairly(model)
    ]
    # An improvement is a classifier's (the spec refuses a regression's): its measurement, an accuracy.
    entries.sort(key=lambda item: (-(item[1].test_value or 0.0), item[1].params or 0, item[0]))
    return tuple(
        Standing(
            sid, record.variable, record.test_value, record.params, typical_epoch_seconds(record.epoch_times), rank
        )
        for rank, (sid, record) in enumerate(entries, start=1)
    )


def standing_of(board: Sequence[Standing], submission: str) -> str | None:
    """``3rd of 24``: where a submission's improvement stands, if it has one."""
    for standing in board:
        if standing.submission == submission:
            return f"{_ordinal(standing.rank)} of {len(board)}"
    return None


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"
