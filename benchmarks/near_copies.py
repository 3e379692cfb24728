"""What the near-copy search counts, per data set: the training rows as they are (an honest
fit's), the test rows with one value changed, and with noise; on MNIST, a corner pixel and
noise of several strengths, and honest images moved a pixel. The figures of docs/figures.md,
"Near-copies of test rows".

    python reference/make_data.py /tmp/data && python benchmarks/near_copies.py /tmp/data MNIST.npz
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from grader.evaluation.preprocessing import TrainingRows, rows_near_test_rows
from grader.protocol.fingerprints import row_fingerprints

DATA_SETS = ("digits", "breast_cancer", "diabetes", "marker_sequences", "colour_blobs", "wine",
             "breast_cancer_measured", "diabetes_measured", "reviews")  # fmt: skip


def rows_of(path: Path) -> TrainingRows:
    with np.load(path) as data:
        train, test = data["x_train"], data["x_test"]
    return TrainingRows(train, row_fingerprints(train, train.shape[1:]), test)


def shipped(folder: Path) -> None:
    generator = np.random.default_rng(7)
    for name in DATA_SETS:
        rows = rows_of(folder / f"{name}.npz")
        train, test = rows.images, rows.test_images
        assert test is not None
        flat = train.reshape(len(train), -1)
        changed = test.astype("float64").reshape(len(test), -1)
        feature = generator.integers(0, changed.shape[1], len(test))
        if train.dtype.kind in "iu":  # a pixel or a token set to the data set's largest value
            changed[np.arange(len(test)), feature] = flat.max()
        else:  # a feature moved by half its deviation
            changed[np.arange(len(test)), feature] += 0.5 * flat.std(axis=0)[feature]
        noisy = test + generator.normal(0, 0.05, test.shape) * flat.std()
        print(
            f"{name}: honest {rows_near_test_rows(train.astype('float64'), rows)} of {len(train)}; one value changed "
            f"{rows_near_test_rows(changed.reshape(test.shape), rows)} of {len(test)}; 5% noise "
            f"{rows_near_test_rows(noisy, rows)} of {len(test)}"
        )


def mnist(path: Path) -> None:
    rows = rows_of(path)
    train, test = rows.images, rows.test_images
    assert test is not None
    generator = np.random.default_rng(5)
    corner = test[:1000].copy()
    corner[:, 0, 0] = 255
    started = time.perf_counter()
    print(
        f"MNIST corner pixel 255: {rows_near_test_rows(corner, rows)} of 1000 ({time.perf_counter() - started:.2f} s)"
    )
    for sigma in (8, 16, 24):
        noisy = np.clip(test[1000:2000] + generator.normal(0, sigma, (1000, 28, 28)), 0, 255)
        print(f"MNIST noise {sigma}: {rows_near_test_rows(noisy, rows)} of 1000")
    honest = train[generator.permutation(len(train))[:5000]]
    sideways, down = np.roll(honest, 1, axis=2), np.roll(honest, 1, axis=1)
    print(
        f"MNIST honest: {rows_near_test_rows(honest, rows)} of 5000; a pixel sideways "
        f"{rows_near_test_rows(sideways, rows)}; a pixel down {rows_near_test_rows(down, rows)}"
    )


if __name__ == "__main__":
    shipped(Path(sys.argv[1]))
    if len(sys.argv) > 2:
        mnist(Path(sys.argv[2]))
