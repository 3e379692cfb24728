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
    test = round(len(x) * TEST_SHARE)
    train_rows, test_rows = order[test:], order[:test]
    return {"x_train": x[train_rows], "y_train": y[train_rows], "x_test": x[test_rows], "y_test": y[test_rows]}


def digits() -> dict[str, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (1,797 images, values 0 to 16), as uint8 images."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return split(bunch.images.astype("uint8"), bunch.target.astype("uint8"))


def breast_cancer() -> dict[str, np.ndarray]:
    """scikit-learn's breast cancer data (569 tumours, 30 measurements, 1 = benign), each
    measurement standardised by the training rows' mean and deviation, as float32."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    arrays = split(bunch.data, bunch.target.astype("uint8"))
    mean, deviation = arrays["x_train"].mean(axis=0), arrays["x_train"].std(axis=0)
    for key in ("x_train", "x_test"):
        # Rounded to 4 decimals: the same file wherever numpy sums in another order.
        arrays[key] = np.round((arrays[key] - mean) / deviation, 4).astype("float32")
    return arrays


def diabetes() -> dict[str, np.ndarray]:
    """scikit-learn's diabetes data (442 patients, 10 measurements already centred and scaled;
    the target a measure of the disease's progress a year on, 25 to 346), as float32."""
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    # Rounded: the same file wherever scikit-learn's copy is read with another float order.
    return split(np.round(bunch.data, 6).astype("float32"), bunch.target.astype("float32"))


# The sequences: tokens 0 (padding, unused here), 1 to 4 (the markers) and 5 to 49 (noise).
SEQUENCE_LENGTH, VOCABULARY, MARKERS, SEQUENCES = 24, 50, 4, 3000


def marker_sequences() -> dict[str, np.ndarray]:
    """Sequences of 24 noise tokens, one of which is replaced by a marker token (1 to 4) at a
    random place: the class is which marker (0 to 3). Made here, from a seeded generator."""
    generator = np.random.RandomState(SEED)
    tokens = generator.randint(MARKERS + 1, VOCABULARY, size=(SEQUENCES, SEQUENCE_LENGTH)).astype("int32")
    classes = generator.randint(0, MARKERS, size=SEQUENCES).astype("uint8")
    places = generator.randint(0, SEQUENCE_LENGTH, size=SEQUENCES)
    tokens[np.arange(SEQUENCES), places] = classes + 1
    return split(tokens, classes)


def colour_blobs() -> dict[str, np.ndarray]:
    """16x16 colour images (uint8): noise whose three channels have their own brightness and
    spread, and a bright blob in one of four quadrants, which is the class (0 to 3). Made here."""
    generator = np.random.RandomState(SEED)
    count = 1500
    channel_mean, channel_spread = np.array([90, 130, 60]), np.array([25, 40, 15])
    images = generator.normal(channel_mean, channel_spread, size=(count, 16, 16, 3))
    classes = generator.randint(0, 4, size=count).astype("uint8")
    for image, label in zip(images, classes, strict=True):
        top, left = divmod(int(label), 2)
        row, column = 8 * top + generator.randint(1, 4), 8 * left + generator.randint(1, 4)
        image[row : row + 4, column : column + 4] += generator.randint(50, 90)
    return split(np.clip(images, 0, 255).astype("uint8"), classes)


def wine() -> dict[str, np.ndarray]:
    """scikit-learn's wine data (178 wines, 13 measurements as they were taken, on scales from
    0.1 to 1,680), the three cultivars counted from 1 as the original data set counts them."""
    from sklearn.datasets import load_wine

    bunch = load_wine()
    return split(np.round(bunch.data, 4).astype("float32"), (bunch.target + 1).astype("uint8"))


def breast_cancer_measured() -> dict[str, np.ndarray]:
    """scikit-learn's breast cancer data, the 30 measurements as they were taken (1 = benign)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return split(np.round(bunch.data, 6).astype("float32"), bunch.target.astype("uint8"))


def diabetes_measured() -> dict[str, np.ndarray]:
    """scikit-learn's diabetes data with its 10 measurements as they were taken (age in years,
    blood pressure, ...), not centred or scaled; the target as ``diabetes``'s."""
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(scaled=False)
    return split(np.round(bunch.data, 4).astype("float32"), bunch.target.astype("float32"))


# Reviews: 40 tokens from a vocabulary of 300; tokens 1 to 20 are words of praise, 21 to 40 of blame.
REVIEW_LENGTH, REVIEW_VOCABULARY, REVIEWS = 40, 300, 2500


def reviews() -> dict[str, np.ndarray]:
    """Token sequences of reviews, made here: neutral tokens (41 to 299) and a few of praise or
    blame; the class is 1 where praise outnumbers blame, 0 where blame does (never a tie)."""
    generator = np.random.RandomState(SEED)
    tokens = generator.randint(41, REVIEW_VOCABULARY, size=(REVIEWS, REVIEW_LENGTH)).astype("int32")
    praise, blame = generator.randint(0, 6, size=REVIEWS), generator.randint(0, 6, size=REVIEWS)
    blame[praise == blame] += 1
    for row, (good, bad) in enumerate(zip(praise, blame, strict=True)):
        places = generator.permutation(REVIEW_LENGTH)[: good + bad]
        tokens[row, places[:good]] = generator.randint(1, 21, size=good)
        tokens[row, places[good:]] = generator.randint(21, 41, size=bad)
    return split(tokens, (praise > blame).astype("uint8"))


DATA_SETS = {
    "digits.npz": digits,
    "breast_cancer.npz": breast_cancer,
    "diabetes.npz": diabetes,
    "marker_sequences.npz": marker_sequences,
    "colour_blobs.npz": colour_blobs,
    "wine.npz": wine,
    "breast_cancer_measured.npz": breast_cancer_measured,
    "diabetes_measured.npz": diabetes_measured,
    "reviews.npz": reviews,
}


def main(folder: Path = HERE) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in DATA_SETS.items():
        digest = write_keras_layout(folder / name, make())
        print(f"{folder / name}: sha256 {digest}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
