"""Write the data files of the shipped exercises that do not use a Keras loader, beside their
specs, from the data scikit-learn ships (nothing downloaded): ``python reference/make_data.py``.

Each file is in Keras' layout (``x_train, y_train, x_test, y_test``) and written byte for byte
the same every time, so that the hash in its spec holds. Data sets are not kept in the
repository; this script makes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from grader.spec.datasets import write_keras_layout

HERE = Path(__file__).resolve().parent
# One test row in five; the rows are shuffled by this seed first (numpy's legacy generator,
# which gives the same numbers in every numpy version).
TEST_SHARE = 0.2
SEED = 0


def split(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    order = np.random.RandomState(SEED).permutation(len(x))
    test = int(round(len(x) * TEST_SHARE))
    train_rows, test_rows = order[test:], order[:test]
    return {"x_train": x[train_rows], "y_train": y[train_rows], "x_test": x[test_rows], "y_test": y[test_rows]}


def digits() -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (1,797 images, values 0 to 16), as uint8 images."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return split(bunch.images.astype("uint8"), bunch.target.astype("uint8"))


DATA_SETS = {"digits.npz": digits}


def main(folder: Path = HERE) -> None:
    for name, make in DATA_SETS.items():
        digest = write_keras_layout(folder / name, make())
        print(f"{folder / name}: sha256 {digest}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
