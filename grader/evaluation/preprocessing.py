"""Find out how a notebook prepared its training rows, from rows it passed to ``fit``.

The rows are matched to the grader's own raw training rows, then the preparation is fitted and
verified on them. Two forms are looked for, in this order:

- one map for every value: a scale and an offset shared by every pixel (``/ 255``,
  standardisation, ``(x - 127.5) / 127.5``, none), padding (LeNet's 32x32), and the shape of a
  row; rows are matched by their fingerprints, which survive such a map;
- one map per feature of a row of features, or per channel of a colour image (standardisation
  with the training rows' means and standard deviations by hand or by scikit-learn's
  ``StandardScaler``, ``MinMaxScaler``, ``RobustScaler``, a per-channel mean and std): rows are
  matched in order, else to their nearest raw row once each side is standardised by its own
  statistics, and the maps are fitted on the matched rows that agree.

Each submission's own preparation is derived (one student standardises, another divides by
the maximum: both are right). The evaluator then prepares the test rows the same way. Nothing
the notebook says about its preparation is used; what cannot be verified is not derived. Pure
numpy.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import cached_property
from typing import Any

import numpy as np

from grader.protocol.fingerprints import row_fingerprints
from grader.spec.exercise import DataSpec
from grader.spec.preprocessing import Preprocessing

# Rows that must be matched to training images for a derivation to count.
MIN_MATCHED_ROWS = 4
# The largest padding looked for, in pixels on every side.
MAX_PAD = 4
# How far a prepared pixel may be from scale * raw + offset, relative to the range of values.
TOLERANCE = 1e-3
# The share of the sample's rows a per-feature map must reproduce: the others may be rows that
# are no training rows (a training set the notebook extended) or matched wrongly.
MIN_AGREEING_SHARE = 0.5
# Rows wider than this are compared, to find their nearest raw row, through a random projection
# to this many values (a colour image's 3,072).
PROJECTED_WIDTH = 64
# Sample rows compared with every raw row at once (memory: this many times the raw rows)
CHUNK_ROWS = 256
# A row a notebook trained on is a test row, or a near-copy of one, when it is within this share
# of the training rows' typical distance to their nearest neighbour of a test row, and within
# NEAR_RATIO of its distance to the nearest training row (an honest training row is 0 from
# itself; a test row with a pixel or a feature changed is far closer to that test row)
NEAR_SHARE = 0.3
NEAR_RATIO = 1.0
# A near-copy may differ from its test row in at most this share of the values either holds;
# values within SAME (in the training rows' units) are the same
CHANGED_SHARE = 0.1
SAME = 0.02
# How far a value, its preparation undone, may be from the whole number it was (float32's
# round-off on values up to 65,535)
ROUND_OFF = 0.01
# Training rows whose distances to their nearest neighbours give the typical distance
TYPICAL_ROWS = 256
# Candidates, by their projected distance, whose exact distance is measured
CANDIDATES = 8


class TrainingRows:
    """The grader's raw training rows, what matching rows to them needs (their fingerprints),
    and, computed once when first needed, the same rows standardised for a nearest-row search."""

    def __init__(self, images: np.ndarray, fingerprints: np.ndarray, test_images: np.ndarray | None = None) -> None:
        self.images = images
        self.fingerprints = fingerprints
        self.test_images = test_images

    @cached_property
    def _scale(self) -> tuple[np.ndarray, np.ndarray]:
        """The training rows' mean and deviation per feature (or channel; one for every value of
        images of one channel): the units in which rows are compared."""
        values = self.images.reshape(len(self.images), -1, self.feature_axis or 1)
        return values.mean(axis=(0, 1), dtype="float64"), np.maximum(values.std(axis=(0, 1), dtype="float64"), 1e-12)

    def scaled(self, rows: np.ndarray, own: bool = False) -> np.ndarray:
        """``rows`` flattened, as float32, in the training rows' units, or with ``own`` each
        feature standardised by the rows' own statistics (a per-feature map's image of the raw
        rows then lands near the raw rows' own)."""
        values = rows.reshape(len(rows), -1, self.feature_axis or 1).astype("float32")
        if own:
            center, spread = values.mean(axis=(0, 1)), values.std(axis=(0, 1))
            spread = np.where(spread > 0, spread, 1)
        else:
            center, spread = (part.astype("float32") for part in self._scale)
        return np.asarray(((values - center) / spread).reshape(len(rows), -1))

    @cached_property
    def _training_row_keys(self) -> set[bytes]:
        """A digest of each training row's bytes, for a data set of whole numbers."""
        rows = np.ascontiguousarray(self.images.reshape(len(self.images), -1))
        return {hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in rows}

    def is_training_row(self, raw_rows: np.ndarray) -> np.ndarray:
        """Which of ``raw_rows`` (a preparation undone) are a training row's values exactly, once
        rounded to the whole numbers the data set holds; none where it holds other numbers."""
        if self.images.dtype.kind not in "iub":
            return np.zeros(len(raw_rows), dtype=bool)
        rounded = np.rint(raw_rows)
        exact = (np.abs(raw_rows - rounded) <= ROUND_OFF).reshape(len(raw_rows), -1).all(axis=1)
        info = np.iinfo(self.images.dtype) if self.images.dtype.kind in "iu" else None
        inside = (rounded.reshape(len(raw_rows), -1) >= (info.min if info else 0)).all(axis=1) & (
            rounded.reshape(len(raw_rows), -1) <= (info.max if info else 1)
        ).all(axis=1)
        known = self._training_row_keys
        found = np.zeros(len(raw_rows), dtype=bool)
        for index in np.flatnonzero(exact & inside):
            row = rounded[index].astype(self.images.dtype).reshape(-1)
            found[index] = hashlib.blake2b(row.tobytes(), digest_size=8).digest() in known
        return found

    @cached_property
    def blank(self) -> np.ndarray:
        """A row of zeros (an empty image) in the training rows' units: values it holds are
        not counted as a row's own when rows are compared value by value."""
        return np.asarray(self.scaled(np.zeros((1, *self.images.shape[1:])))[0])

    @cached_property
    def scaled_train(self) -> np.ndarray:
        return self.scaled(self.images)

    @cached_property
    def scaled_test(self) -> np.ndarray:
        return self.scaled(self.test_images if self.test_images is not None else self.images[:0])

    @cached_property
    def searchable_train(self) -> np.ndarray:
        return self.projected(self.scaled_train)

    @cached_property
    def searchable_test(self) -> np.ndarray:
        return self.projected(self.scaled_test)

    def projected(self, scaled: np.ndarray) -> np.ndarray:
        return scaled if self._projection is None else np.asarray(scaled @ self._projection)

    @cached_property
    def typical_distance(self) -> float:
        """The median distance from a training row to its nearest other training row (on up to
        ``TYPICAL_ROWS`` of them), in the training rows' units: how far apart rows that are
        not copies are."""
        rows = self.images[np.random.default_rng(2).permutation(len(self.images))[:TYPICAL_ROWS]]
        # A row itself, and its duplicates, are no neighbours
        distances, _ = _nearest(
            self.scaled(rows), self.scaled_train, self.searchable_train, self.projected, self.blank, apart=True
        )
        distances = distances[np.isfinite(distances)]
        return float(np.median(distances)) if len(distances) else 0.0

    @cached_property
    def feature_axis(self) -> int | None:
        """How many maps a per-feature preparation has: a row of features' width, or a colour
        image's channels; None for images of one channel (per pixel is not a preparation)."""
        shape = self.images.shape[1:]
        if len(shape) == 1:
            return int(shape[0])
        if len(shape) == 3 and shape[2] > 1:
            return int(shape[2])
        return None

    @cached_property
    def _projection(self) -> np.ndarray | None:
        width = math.prod(self.images.shape[1:])
        if width <= PROJECTED_WIDTH:
            return None
        # Fixed: nothing about it needs to be secret, and matching must be reproducible.
        return np.random.default_rng(0).standard_normal((width, PROJECTED_WIDTH)).astype("float32")

    @cached_property
    def searchable(self) -> np.ndarray:
        """The raw rows standardised per feature by their own statistics, projected."""
        return self.projected(self.scaled(self.images, own=True))


def derive_preprocessing(
    sample: np.ndarray, train: TrainingRows, positions: np.ndarray | None = None
) -> Preprocessing | None:
    """The preparation that turns the raw training rows into ``sample`` (rows a notebook
    trained on, at ``positions`` in what its fit received, if known), or None when none of the
    forms above does."""
    if sample.ndim < 2 or len(sample) == 0 or not np.isfinite(sample).all():
        return None
    return _shared_map(sample, train) or _per_feature_maps(sample, train, positions)


def rows_near_test_rows(raw_rows: np.ndarray, train: TrainingRows) -> int:
    """How many of ``raw_rows`` (rows a notebook trained on, its preparation undone) are test
    rows or near-copies of test rows, and not training rows. A row is one when, of the test rows
    nearest it, one is nearer than ``NEAR_SHARE`` of the typical distance between training rows
    and nearer than any training row (a little noise on every value), or differs from it in at
    most ``CHANGED_SHARE`` of the values either holds (a pixel or a feature changed, whatever
    by) where every training row differs in more than twice as many."""
    if train.test_images is None or not len(raw_rows) or not len(train.test_images):
        return 0
    # A training row as the file holds it is no test row: only the others are searched (all of
    # an honest fit's rows, where the data set is of whole numbers, which no near-copy is)
    raw_rows = raw_rows[~train.is_training_row(raw_rows)]
    if not len(raw_rows):
        return 0
    scaled = train.scaled(raw_rows)
    to_test, changed_test = _nearest(scaled, train.scaled_test, train.searchable_test, train.projected, train.blank)
    to_train, changed_train = _nearest(scaled, train.scaled_train, train.searchable_train, train.projected, train.blank)
    noisy = (to_test <= NEAR_SHARE * train.typical_distance) & (to_test < NEAR_RATIO * to_train)
    edited = (changed_test <= CHANGED_SHARE) & (changed_train > 2 * changed_test)
    return int((noisy | edited).sum())


def _nearest(
    rows: np.ndarray,
    candidates: np.ndarray,
    searchable: np.ndarray,
    projected: Callable[[np.ndarray], np.ndarray],
    blank: np.ndarray,
    apart: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``rows``' distance to its nearest row of ``candidates`` (both scaled), or with
    ``apart`` its nearest row that is not the same; and the least share of changed values (of
    those either row holds: not ``blank``, an empty pixel) to one of them. Among the
    ``CANDIDATES`` nearest by their projection (``searchable``), measured exactly."""
    if not len(candidates):
        return np.full(len(rows), np.inf), np.ones(len(rows))
    distances, changed = np.empty(len(rows)), np.empty(len(rows))
    nearest = _nearest_by_projection(projected(rows), searchable, CANDIDATES)
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk, near = rows[start : start + CHUNK_ROWS], nearest[start : start + CHUNK_ROWS]
        difference = (candidates[near] - chunk[:, None, :]).astype("float64")  # (rows, candidates, values)
        exact = (difference**2).sum(axis=2)
        held = (np.abs(candidates[near] - blank) > SAME) | (np.abs(chunk - blank) > SAME)[:, None, :]
        share = (np.abs(difference) > SAME).sum(axis=2) / np.maximum(held.sum(axis=2), 1)
        if apart:
            exact[exact == 0] = np.inf
        distances[start : start + CHUNK_ROWS] = np.sqrt(exact.min(axis=1))
        changed[start : start + CHUNK_ROWS] = share.min(axis=1)
    return distances, changed


def _nearest_by_projection(projected: np.ndarray, searchable: np.ndarray, keep: int) -> np.ndarray:
    """For each row of ``projected``, the positions of its ``keep`` nearest rows of
    ``searchable`` (both projected the same way), in chunks of ``CHUNK_ROWS``."""
    keep = min(keep, len(searchable))
    squared = (searchable.astype("float64") ** 2).sum(axis=1)
    nearest = np.empty((len(projected), keep), dtype=np.int64)
    for start in range(0, len(projected), CHUNK_ROWS):
        distances = squared[None, :] - 2 * projected[start : start + CHUNK_ROWS] @ searchable.T
        nearest[start : start + CHUNK_ROWS] = np.argpartition(distances, keep - 1, axis=1)[:, :keep]
    return nearest


def why_not_derived(sample: np.ndarray, train: TrainingRows) -> str:
    """Why no preparation reproduces ``sample`` from the raw training rows, in the terms an
    author can act on: which features no map per feature reproduces, and how far off they are
    (a share of the feature's spread), on the rows matched best; or why rows were not matched."""
    if sample.ndim < 2 or not len(sample):
        return "fit received no rows the grader could read"
    if not np.isfinite(sample).all():
        return "the rows fit received hold values that are not finite numbers (NaN or infinity)"
    axis = train.feature_axis
    if axis is None or sample[0].size != math.prod(train.images.shape[1:]) or len(sample) < MIN_MATCHED_ROWS:
        return (
            f"rows of shape {tuple(sample.shape[1:])} are not the training images {tuple(train.images.shape[1:])} "
            "scaled, shifted, padded or reshaped"
        )
    prepared = sample.reshape(len(sample), -1, axis).astype("float64")
    # Per way of matching rows, the features off on the rows that match best (by their median
    # feature, so that a few features off do not hide which rows match); the fewest off tell.
    per_feature = min(
        (_feature_errors(train.images[positions].reshape(len(sample), -1, axis).astype("float64"), prepared)
         for positions in _candidate_matches(sample, train)),
        key=lambda errors: int((errors > TOLERANCE).sum()),
    )  # fmt: skip
    off = np.flatnonzero(per_feature > TOLERANCE)
    if not len(off):
        return "the rows fit received match no training rows well enough to tell their preparation"
    named = ", ".join(str(int(feature)) for feature in off[:10]) + (", …" if len(off) > 10 else "")
    kind = "channels" if len(train.images.shape) > 2 else "features"
    return (
        f"no map x * a + b of each of the training rows' {kind} gives the rows fit received: {kind} {named} "
        f"({len(off)} of {axis}, counted from 0) are off by up to {float(per_feature.max()):.0%} of their spread "
        "(a preparation that is not a scale and a shift, or rows that are not the training rows)"
    )


def _feature_errors(raw: np.ndarray, prepared: np.ndarray) -> np.ndarray:
    """Per feature, how far the best fitting map leaves ``prepared`` from ``raw`` (a share of the
    feature's spread), on the half of the rows whose median feature it fits best."""
    best = np.arange(len(raw))
    for _ in range(2):  # fitted on all rows, then again on the best half
        scales, offsets = _least_squares(raw[best], prepared[best])
        spread = np.maximum(np.ptp(prepared, axis=(0, 1)), 1e-12)
        errors = (np.abs(raw * scales + offsets - prepared) / spread).max(axis=1)  # (rows, features)
        best = np.argsort(np.median(errors, axis=1))[: max(MIN_MATCHED_ROWS, len(raw) // 2)]
    return np.asarray(errors[best].max(axis=0))


def _shared_map(sample: np.ndarray, train: TrainingRows) -> Preprocessing | None:
    """One scale and offset for every value, padding and shape, on rows matched by fingerprint."""
    image_shape = train.images.shape[1:]
    raw = _matched_raw_rows(sample, train)
    if raw is None:
        return None
    prepared, chosen = sample[raw[0]], train.images[raw[1]].astype("float64")
    pad = _padding(prepared[0].size, image_shape)
    if pad is None:
        return None
    if pad:
        planes = prepared.reshape(len(prepared), image_shape[0] + 2 * pad, image_shape[1] + 2 * pad, -1)
        inner = planes[:, pad : pad + image_shape[0], pad : pad + image_shape[1]].reshape(len(planes), *image_shape)
    else:
        inner = prepared.reshape(len(prepared), *image_shape)
    scale, offset = _affine(chosen.ravel(), inner.astype("float64").ravel())
    if scale is None:
        return None
    pad_value = 0.0
    if pad:
        border = planes.copy()
        border[:, pad : pad + image_shape[0], pad : pad + image_shape[1]] = np.nan
        values = border[~np.isnan(border)]
        if np.ptp(values) > TOLERANCE * max(1.0, abs(scale) * 255):
            return None
        pad_value = float(values[0])
    return Preprocessing(scale=scale, offset=offset, shape=tuple(sample.shape[1:]), pad=pad, pad_value=pad_value)


def _per_feature_maps(sample: np.ndarray, train: TrainingRows, positions: np.ndarray | None) -> Preprocessing | None:
    """A map per feature (or channel), on rows matched in order or to their nearest raw row."""
    raw_shape = train.images.shape[1:]
    axis = train.feature_axis
    if axis is None or sample[0].size != math.prod(raw_shape) or len(sample) < MIN_MATCHED_ROWS:
        return None
    prepared = sample.reshape(len(sample), -1, axis).astype("float64")
    for matched in _candidate_matches(sample, train, positions):
        raw = train.images[matched].reshape(len(sample), -1, axis).astype("float64")
        maps = _fitted_maps(raw, prepared)
        if maps is not None:
            scales, offsets = maps
            if np.allclose(scales, scales[0], rtol=1e-5) and np.allclose(offsets, offsets[0], rtol=1e-5, atol=1e-6):
                # One map for every feature after all (no preparation, a scale whose rows'
                # fingerprints were too alike to match)
                return Preprocessing(scale=scales[0], offset=offsets[0], shape=tuple(sample.shape[1:]))
            return Preprocessing(
                scale=1.0, offset=0.0, shape=tuple(sample.shape[1:]), feature_scale=scales, feature_offset=offsets
            )
    return None


def _candidate_matches(
    sample: np.ndarray, train: TrainingRows, positions: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """Which raw row each sample row may be: the same position (a notebook that kept the
    order), then the nearest raw row (one that shuffled or split)."""
    if positions is None:
        positions = np.arange(len(sample))
    if (
        len(positions) == len(sample)
        and len(positions)
        and 0 <= positions.min()
        and positions.max() < len(train.images)
    ):
        yield positions
    projected = train.projected(train.scaled(sample.reshape(len(sample), *train.images.shape[1:]), own=True))
    yield _nearest_by_projection(projected, train.searchable, 1)[:, 0]


def _fitted_maps(raw: np.ndarray, prepared: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Per feature ``j``, ``scale > 0`` and ``offset`` with ``prepared[..., j] == raw[..., j] *
    scale + offset`` on the rows that agree, if at least ``MIN_AGREEING_SHARE`` of them do.
    Rows matched wrongly are dropped: fitted on all rows, then on those that agree (or, when
    too few do, the half the fit reproduces best), until every row fitted on agrees."""
    needed = max(MIN_MATCHED_ROWS, math.ceil(MIN_AGREEING_SHARE * len(raw)))
    kept = np.arange(len(raw))
    for _ in range(6):
        scales, offsets = _least_squares(raw[kept], prepared[kept])
        spread = np.maximum(np.ptp(prepared[kept], axis=(0, 1)), 1e-12)
        errors = (np.abs(raw * scales + offsets - prepared) / spread).max(axis=(1, 2))
        agreeing = np.flatnonzero(errors <= TOLERANCE)
        if np.isin(kept, agreeing).all():
            if len(agreeing) < needed or (scales <= 0).any():
                return None
            return tuple(float(np.float32(s)) for s in scales), tuple(float(np.float32(o)) for o in offsets)
        if len(agreeing) >= MIN_MATCHED_ROWS:
            kept = agreeing
        elif len(kept) // 2 >= MIN_MATCHED_ROWS:
            kept = kept[np.argsort(errors[kept])[: len(kept) // 2]]
        else:
            return None
    return None


def _least_squares(raw: np.ndarray, prepared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, the scale and offset that fit best; a feature constant in the raw rows maps
    by its shift alone (scikit-learn's scalers leave such a feature's scale at 1)."""
    x = raw.transpose(2, 0, 1).reshape(raw.shape[2], -1)
    y = prepared.transpose(2, 0, 1).reshape(prepared.shape[2], -1)
    x_mean, y_mean = x.mean(axis=1), y.mean(axis=1)
    variance = ((x - x_mean[:, None]) ** 2).mean(axis=1)
    covariance = ((x - x_mean[:, None]) * (y - y_mean[:, None])).mean(axis=1)
    constant = variance <= 1e-24
    scales = np.where(constant, 1.0, covariance / np.where(constant, 1.0, variance))
    return scales, y_mean - scales * x_mean


def _matched_raw_rows(sample: np.ndarray, train: TrainingRows) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions in ``sample`` and in the training images of the rows that are the same image;
    a fingerprint two training images share tells neither, so those rows are left out."""
    fingerprints = row_fingerprints(sample, train.images.shape[1:])
    known, first, counts = np.unique(train.fingerprints, return_index=True, return_counts=True)
    spot = np.clip(np.searchsorted(known, fingerprints), 0, len(known) - 1)
    matched = (known[spot] == fingerprints) & (counts[spot] == 1)
    if matched.sum() < MIN_MATCHED_ROWS:
        return None
    return np.flatnonzero(matched), first[spot[matched]]


def _padding(size: int, image_shape: tuple[int, ...]) -> int | None:
    """The pixels added on every side of an image that make it ``size`` values; rows of
    features or tokens (one axis) are never padded."""
    if len(image_shape) < 2:
        return 0 if size == math.prod(image_shape) else None
    channels = math.prod(image_shape[2:]) if len(image_shape) > 2 else 1
    for pad in range(MAX_PAD + 1):
        if size == (image_shape[0] + 2 * pad) * (image_shape[1] + 2 * pad) * channels:
            return pad
    return None


def _affine(raw: np.ndarray, prepared: np.ndarray) -> tuple[float | None, float]:
    """``scale`` and ``offset`` with ``prepared == raw * scale + offset``, if that holds."""
    if np.ptp(raw) == 0:
        return None, 0.0
    scale, offset = np.polyfit(raw, prepared, 1)
    spread = max(float(np.ptp(prepared)), 1e-12)
    if np.abs(raw * scale + offset - prepared).max() > TOLERANCE * spread or scale <= 0:
        return None, 0.0
    # Round-off of the fit is no offset: x / 255 has none.
    return float(np.float32(scale)), 0.0 if abs(offset) <= 1e-6 * spread else float(np.float32(offset))


def notebook_preparation(
    samples: list[tuple[np.ndarray, np.ndarray | None]],
    training: TrainingRows,
    data: DataSpec,
    input_shape: tuple[int, ...] | None,
) -> dict[str, Any]:
    """How to prepare rows for a model, from ``samples`` (rows its last fits received, the last
    first, each with where its rows were): as derived from the last, else the exercise's own
    (reshaped to the model's ``input_shape`` if that is all that differs); whether it was
    derived, and why not; and, with the preparation undone, the test rows (and near-copies of
    them) found among the rows drawn at random and among the fits' first rows, and how many
    rows each part holds."""
    found: dict[str, Any] = {
        "problem": "fit was not given the rows as an array",
        "test_rows": None, "rows": None, "leading_test_rows": None, "leading_rows": None,
    }  # fmt: skip
    if samples:
        rows, positions = samples[0]
        derived = derive_preprocessing(rows, training, positions)
        if derived is not None and (input_shape is None or derived.shape == input_shape):
            found = {"test_rows": 0, "rows": 0, "leading_test_rows": 0, "leading_rows": 0}
            for rows, positions in samples:
                raw = derived.undo(rows, data.image_shape)
                if raw is None or not np.isfinite(raw).all():
                    continue
                # The fit's first rows are no random sample of it: counted apart, as they are
                leading = _leading(positions, len(raw))
                found["leading_test_rows"] += rows_near_test_rows(raw[:leading], training) if leading else 0
                found["leading_rows"] += leading
                found["test_rows"] += rows_near_test_rows(raw[leading:], training) if leading < len(raw) else 0
                found["rows"] += len(raw) - leading
            return {"preparation": derived, "derived": True, "problem": None, **found}
        found["problem"] = (
            why_not_derived(rows, training)
            if derived is None
            else f"the rows fit received are shaped {derived.shape}, the model takes {input_shape}"
        )
    exercise = data.preprocessing
    if input_shape is not None and int(np.prod(exercise.shape)) == int(np.prod(input_shape)):
        exercise = replace(exercise, shape=input_shape)
    return {**found, "preparation": exercise, "derived": False}


def checked_positions(positions: np.ndarray, rows: int) -> np.ndarray:
    """Where a sample's rows were in what the fit received: whole numbers, one per row; else
    ``ValueError``."""
    if positions.shape != (rows,) or positions.dtype.kind not in "iu":
        raise ValueError(f"the sample's positions have shape {positions.shape} and dtype {positions.dtype}")
    return np.asarray(positions, dtype=np.int64)


def _leading(positions: np.ndarray | None, rows: int) -> int:
    """How many of a sample's rows are its fit's first rows (positions 0, 1, 2, ...): all of
    them when their positions were not saved (a tensor's sample is its first rows)."""
    if positions is None:
        return rows
    expected = np.arange(len(positions))
    return int(np.argmin(positions == expected)) if not (positions == expected).all() else len(positions)
