"""The reports' plots: matplotlib figures rendered to SVG data URIs, so that a
page needs no other file and no network. Inputs are plain data."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from grader.reports.summary import CheckRate, Point
from grader.spec.calibration import Band

TRAIN_COLOR = "#1f6fb4"
VALIDATION_COLOR = "#d9731a"
OUTLIER_COLOR = "#b3261e"
POINT_COLOR = "#3b5b7a"
RANGE_COLOR = "#cfe8d4"
STYLE: dict[Any, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller files, and searchable
    "svg.hashsalt": "grader",  # the same data gives the same file
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
}


def _data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def learning_curves(history: Mapping[str, Sequence[float | None]], bands: Mapping[str, Band]) -> str | None:
    """Loss and accuracy (a regression's: its mean absolute error) per epoch, training and
    validation, over the reference band."""
    if not history and not bands:
        return None
    second = ("mae", "Mean absolute error") if "mae" in {*history, *bands} - {"accuracy"} else ("accuracy", "Accuracy")
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(1, 2, figsize=(8.4, 3.0))
        for axis, metric, title in ((axes[0], "loss", "Loss"), (axes[1], *second)):
            sides = ((metric, TRAIN_COLOR, "training"), (f"val_{metric}", VALIDATION_COLOR, "validation"))
            for key, color, label in sides:
                band = bands.get(key)
                if band is not None:
                    epochs = range(1, len(band.low) + 1)
                    axis.fill_between(
                        epochs, band.low, band.high, color=color, alpha=0.3, linewidth=0, label=f"reference {label}"
                    )
                values = history.get(key)
                if values:
                    axis.plot(
                        range(1, len(values) + 1),
                        [math.nan if value is None else value for value in values],  # a gap where not a number
                        color=color,
                        marker="o",
                        markersize=2.5,
                        linewidth=1.4,
                        label=f"this notebook, {label}",
                    )
            axis.set_title(title)
            axis.set_xlabel("epoch")
        legend: dict[str, Any] = {}  # label -> handle, from both plots: either may lack a line
        for axis in axes:
            for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
                legend.setdefault(label, handle)
        figure.legend(
            list(legend.values()), list(legend), loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, -0.12)
        )
        return _data_uri(figure)


def score_histogram(scores: Sequence[float], max_score: float, title: str = "Scores") -> str:
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(4.6, 2.8))
        top = max(max_score, max(scores, default=0.0), 1.0)
        axis.hist(scores, bins=min(20, max(5, int(top))), range=(0, top), color=POINT_COLOR, edgecolor="white")
        axis.set_xlabel(f"score (out of {max_score:g})")
        axis.set_ylabel("submissions")
        axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_title(title)
        return _data_uri(figure)


def pass_rates(rates: Sequence[CheckRate]) -> str:
    """One bar per check: the share of submissions that passed it, where it ran."""
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(4.6, 0.5 + 0.24 * max(len(rates), 1)))
        labels = [rate.check for rate in rates]
        shares = [100 * rate.rate for rate in rates]
        positions = range(len(rates))
        axis.barh(positions, shares, color=[TRAIN_COLOR if share >= 50 else OUTLIER_COLOR for share in shares])
        for position, rate in zip(positions, rates, strict=True):
            note = f"{rate.passed}/{rate.counted}" if rate.counted else "not run"
            axis.text(101, position, note, va="center", fontsize=8)
        axis.set_yticks(list(positions), labels)
        axis.invert_yaxis()
        axis.set_xlim(0, 115)
        axis.set_xlabel("passed (%)")
        axis.set_title("Checks passed")
        return _data_uri(figure)


def distribution(
    points: Mapping[str, Sequence[Point]],
    xlabel: str,
    title: str,
    expected: Mapping[str, tuple[float, float]] | None = None,
    expected_label: str = "",
) -> str | None:
    """One row per model, one dot per submission; outliers in red and named.

    ``expected`` shades a span per model (an accepted range, or the reference spread).
    """
    models = [name for name, values in points.items() if values]
    if not models:
        return None
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(8.4, 0.9 + 0.55 * len(models)))
        for row, name in enumerate(models):
            if expected and name in expected:
                low, high = expected[name]
                axis.fill_betweenx(
                    [row - 0.3, row + 0.3], low, high, color=RANGE_COLOR, label=expected_label if row == 0 else None
                )
            values = points[name]
            # A fixed spread of the dots across the row, so that equal values stay visible.
            offsets = [((index * 7) % 11 - 5) / 25 for index in range(len(values))]
            normal = [(p.value, row + o) for p, o in zip(values, offsets, strict=True) if not p.outlier]
            unusual = [(p, row + o) for p, o in zip(values, offsets, strict=True) if p.outlier]
            if normal:
                xs, ys = zip(*normal, strict=True)
                axis.scatter(xs, ys, s=14, color=POINT_COLOR, zorder=3)
            for point, y in unusual:
                axis.scatter([point.value], [y], s=22, color=OUTLIER_COLOR, marker="D", zorder=4)
                axis.annotate(
                    point.submission,
                    (point.value, y),
                    xytext=(4, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color=OUTLIER_COLOR,
                )
        axis.set_yticks(range(len(models)), models)
        axis.set_ylim(len(models) - 0.5, -0.5)
        axis.set_xlabel(xlabel)
        axis.set_title(title)
        if expected_label and expected:
            axis.legend(loc="lower right", frameon=False, fontsize=8)
        return _data_uri(figure)
