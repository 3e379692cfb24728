"""Find out how a notebook prepared its training images, from rows it passed to ``fit``.

The rows are matched to the grader's own raw training images by their fingerprints, then the
preparation is fitted and verified on them: a scale and an offset shared by every pixel (``/
255``, standardisation, ``(x - 127.5) / 127.5``, none), padding (LeNet's 32x32), and the shape
of a row. The evaluator then prepares the test images the same way. Nothing the notebook says
about its preparation is used; what cannot be verified is not derived. Pure numpy.
"""

from __future__ import annotations

import math

import numpy as np

from grader.protocol.fingerprints import row_fingerprints
from grader.spec.preprocessing import Preprocessing

# Rows that must be matched to training images for a derivation to count.
MIN_MATCHED_ROWS = 4
# The largest padding looked for, in pixels on every side.
MAX_PAD = 4
# How far a prepared pixel may be from scale * raw + offset, relative to the range of values.
TOLERANCE = 1e-3


def derive_preprocessing(
    sample: np.ndarray, train_images: np.ndarray, train_fingerprints: np.ndarray
) -> Preprocessing | None:
    """The preparation that turns the raw training images into ``sample`` (rows a notebook
    trained on), or None when none of the forms above does."""
    if sample.ndim < 2 or len(sample) == 0 or not np.isfinite(sample).all():
        return None
    image_shape = train_images.shape[1:]
    raw = _matched_raw_rows(sample, train_images, train_fingerprints)
    if raw is None:
        return None
    prepared, chosen = sample[raw[0]], train_images[raw[1]].astype("float64")
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


def _matched_raw_rows(
    sample: np.ndarray, train_images: np.ndarray, train_fingerprints: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions in ``sample`` and in the training images of the rows that are the same image;
    a fingerprint two training images share tells neither, so those rows are left out."""
    fingerprints = row_fingerprints(sample, train_images.shape[1:])
    known, first, counts = np.unique(train_fingerprints, return_index=True, return_counts=True)
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
