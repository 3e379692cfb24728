"""Row fingerprints that tell which images a model was trained on, whatever the notebook did
to them on the way.

A row's fingerprint hashes the mask of its bright pixels (those above the middle of the row's
own range of values), moved to the top-left corner of the image. The mask survives every
per-row scaling and shift of values (``/ 255``, standardisation, ``(x - 127.5) / 127.5``),
float conversion, flattening and reshaping; moving it to the corner makes it survive moving
the digit by some pixels and padding the image (28x28 to 32x32). Pure numpy, vectorised: used
inside the kernel and by the grader.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# The most bytes of the rows a fit received the kernel saves as they were (its sample), for the
# grader to find out how the notebook prepared them and whether test rows are among them.
MAX_SAMPLE_BYTES = 4 * 2**20

_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX_AGAIN = np.uint64(0xBF58476D1CE4E5B9)


def row_fingerprints(images: object, image_shape: Sequence[int]) -> np.ndarray:
    """One uint64 per row (image) of ``images``, an array-like of any numeric type.

    ``image_shape`` is the data set's image shape (e.g. ``(28, 28)``): the canvas the masks
    are placed on. A row whose pixels do not form a square image (nor ``image_shape``) is
    hashed as it is, unmoved.
    """
    array = np.asarray(images)
    rows = array.reshape(len(array), -1)
    if not len(rows):
        return np.zeros(0, dtype=np.uint64)
    values = rows.astype(np.int16 if rows.dtype == np.uint8 else np.float32, copy=False)
    mask = values * 2 > values.min(axis=1, keepdims=True) + values.max(axis=1, keepdims=True)
    planes = _as_planes(mask, tuple(image_shape))
    if planes is None or planes.shape[2] > MAX_WIDTH:
        return _hash_words(np.packbits(mask, axis=1))
    return _hash_words(_moved_to_corner(planes, image_shape[0] if len(image_shape) >= 2 else planes.shape[1]))


def count_test_rows(fingerprints: np.ndarray, train: np.ndarray, test: np.ndarray) -> int:
    """How many rows are test images: their fingerprint is a test image's and no training image's."""
    return int((np.isin(fingerprints, test) & ~np.isin(fingerprints, train)).sum())


# Image rows are handled as bit patterns in 64-bit words.
MAX_WIDTH = 64


def _as_planes(mask: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray | None:
    """The rows as (rows, height, width) images, if they are images of one channel; rows of
    features or tokens (a data set of one axis) are not images."""
    if len(image_shape) == 1:
        return None
    size = mask.shape[1]
    if len(image_shape) >= 2 and size == math.prod(image_shape):
        height, width = image_shape[0], math.prod(image_shape[1:])
    else:
        side = math.isqrt(size)
        if side * side != size:
            return None
        height = width = side
    return mask.reshape(len(mask), height, width)


def _moved_to_corner(planes: np.ndarray, canvas_height: int) -> np.ndarray:
    """Each mask moved up and left until it touches the top and left edges, cut or padded to
    ``canvas_height`` rows: one 64-bit word per image row, its pixels as bits from the top."""
    count, height, width = planes.shape
    packed = np.zeros((count, height, 8), dtype=np.uint8)
    packed[:, :, : -(-width // 8)] = np.packbits(planes, axis=2)
    words = packed.view(">u8")[:, :, 0].astype(np.uint64)  # (count, height); column 0 is the top bit
    top = planes.any(axis=2).argmax(axis=1)
    left = planes.any(axis=1).argmax(axis=1).astype(np.uint64)
    rows = np.minimum(top[:, None] + np.arange(canvas_height), height)  # past the last row: an empty one
    padded = np.concatenate([words, np.zeros((count, 1), dtype=np.uint64)], axis=1)
    moved: np.ndarray = np.take_along_axis(padded, rows, axis=1) << left[:, None]  # empty columns move out at the top
    return moved


def _hash_words(words: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of ``words`` (bytes are grouped into 8-byte words first)."""
    if words.dtype != np.uint64:
        width = -(-words.shape[1] // 8) * 8
        padded = np.zeros((len(words), width), dtype=np.uint8)
        padded[:, : words.shape[1]] = words
        words = padded.view(np.uint64)
    digest = np.full(len(words), np.uint64(words.shape[1]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in range(words.shape[1]):
            digest = (digest ^ words[:, column]) * _MIX
            digest ^= digest >> np.uint64(31)
        digest = (digest ^ (digest >> np.uint64(30))) * _MIX_AGAIN
        digest ^= digest >> np.uint64(27)
    return digest
