"""Row fingerprints that tell which images a model was trained on.

A row's fingerprint hashes which of its pixels are non-zero, so it survives
the usual preprocessing (scaling, float conversion, flattening) and still
tells training images from test images. Pure numpy: used inside the kernel
and by the grader.
"""

from __future__ import annotations

import hashlib

import numpy as np


def row_fingerprints(images: np.ndarray) -> np.ndarray:
    """One uint64 per row (image) of ``images``."""
    rows = np.asarray(images).reshape(len(images), -1) > 0
    packed = np.packbits(rows, axis=1)
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little") for row in packed),
        dtype=np.uint64,
        count=len(packed),
    )


def count_test_rows(fingerprints: np.ndarray, train: np.ndarray, test: np.ndarray) -> int:
    """How many rows are test images; the few digits that also occur in the training set do not count."""
    return int((np.isin(fingerprints, test) & ~np.isin(fingerprints, train)).sum())
