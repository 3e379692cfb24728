"""The evaluator prepares test images as the notebook prepared its training images, derived
from rows the notebook trained on and verified against the grader's own raw images."""

import numpy as np
import pytest

from grader.evaluation.preprocessing import TrainingRows, derive_preprocessing, rows_near_test_rows
from grader.protocol.fingerprints import row_fingerprints


@pytest.fixture(scope="module")
def train(mnist_path):
    with np.load(mnist_path) as data:
        images = data["x_train"]
    return TrainingRows(images, row_fingerprints(images, (28, 28)))


@pytest.mark.parametrize(
    ("prepare", "shape", "description"),
    [
        (lambda x: x.reshape(-1, 784).astype("float32") / 255, (784,), "x / 255, shaped (784,)"),
        (lambda x: x.reshape(-1, 784).astype("float32"), (784,), "x, shaped (784,)"),
        (lambda x: ((x.astype("float32") - 127.5) / 127.5)[..., None], (28, 28, 1), "(x - 127.5) / 127.5"),
        (lambda x: (x.astype("float32") - 33.3184) / 78.5675, (28, 28), "(x - 33.3184) / 78.5675"),
        (
            lambda x: np.pad(x.astype("float32") / 255, ((0, 0), (2, 2), (2, 2)))[..., None],
            (32, 32, 1),
            "x / 255, padded by 2",
        ),
    ],
)
def test_the_preparation_is_derived_and_reproduces_the_notebooks_own(train, prepare, shape, description):
    images = train.images
    rows = images[100:132]  # what the kernel exports: the first rows of x, here some training rows
    preprocessing = derive_preprocessing(prepare(rows), train)
    assert preprocessing is not None and preprocessing.shape == shape
    assert preprocessing.describe().startswith(description)
    test_rows = images[5000:5010]
    assert np.allclose(preprocessing.apply(test_rows), prepare(test_rows), atol=1e-4)


def test_what_cannot_be_verified_is_not_derived(train):
    images = train.images
    rows = images[100:132].reshape(-1, 784).astype("float32")
    per_pixel = (rows - rows.mean(axis=0)) / (rows.std(axis=0) + 1)  # each pixel its own scale
    assert derive_preprocessing(per_pixel, train) is None
    noise = np.random.default_rng(0).random((32, 784))  # not training images at all
    assert derive_preprocessing(noise, train) is None


@pytest.fixture(scope="module")
def tabular():
    """Breast cancer's 30 features (scikit-learn ships them), raw as a data file holds them."""
    from sklearn.datasets import load_breast_cancer

    features = load_breast_cancer().data.astype("float32")
    raw = features[:455]
    return TrainingRows(raw, row_fingerprints(raw, raw.shape[1:])), features[455:]


def _standardised(x, rows):
    return (x - rows.mean(axis=0)) / rows.std(axis=0)


@pytest.mark.parametrize(
    "prepare",
    [
        pytest.param(lambda raw: lambda x: _standardised(x, raw), id="numpy-standardised"),
        pytest.param(lambda raw: lambda x: (x - raw.min(axis=0)) / (raw.max(axis=0) - raw.min(axis=0)), id="min-max"),
        pytest.param(lambda raw: lambda x: x / raw.max(axis=0), id="divided-by-each-max"),
        pytest.param(
            lambda raw: (
                lambda x: (
                    (x - np.median(raw, axis=0)) / (np.percentile(raw, 75, axis=0) - np.percentile(raw, 25, axis=0))
                )
            ),
            id="robust",
        ),
    ],
)
@pytest.mark.parametrize("order", ["kept", "shuffled", "split-by-hand"])
def test_a_map_per_feature_is_derived_whatever_the_rows_order(tabular, prepare, order):
    train, test = tabular
    raw = train.images
    rows = {
        "kept": raw,
        "shuffled": raw[np.random.default_rng(1).permutation(len(raw))],
        "split-by-hand": raw[np.random.default_rng(2).permutation(len(raw))[:364]],
    }[order]
    # The statistics of the rows it trains on (a split by hand), or of all the training rows
    preparation = prepare(rows if order == "split-by-hand" else raw)
    derived = derive_preprocessing(preparation(rows)[:32], train)
    assert derived is not None and len(derived.feature_scale) == 30
    assert derived.describe().startswith("(x - center) / spread per feature of 30")
    assert np.allclose(derived.apply(test), preparation(test), rtol=1e-3, atol=1e-3)


def test_scikit_learns_scalers_are_derived(tabular):
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    train, test = tabular
    for scaler in (StandardScaler(), MinMaxScaler(), RobustScaler()):
        scaler.fit(train.images)
        derived = derive_preprocessing(scaler.transform(train.images)[:32], train)
        assert derived is not None, type(scaler).__name__
        assert np.allclose(derived.apply(test), scaler.transform(test), rtol=1e-3, atol=1e-3)


def test_a_map_per_channel_of_colour_images_is_derived():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (600, 8, 8, 3), dtype=np.uint8)
    train = TrainingRows(images, row_fingerprints(images, images.shape[1:]))
    mean = images.mean(axis=(0, 1, 2))
    std = images.std(axis=(0, 1, 2))
    shuffled = images[rng.permutation(len(images))]
    derived = derive_preprocessing(((shuffled - mean) / std)[:32], train)
    assert derived is not None and len(derived.feature_scale) == 3
    assert np.allclose(derived.apply(images[:5]), (images[:5] - mean) / std, atol=1e-4)


def test_rows_that_no_map_per_feature_reproduces_are_not_derived(tabular):
    train, _ = tabular
    raw = train.images
    assert derive_preprocessing(np.log1p(raw[:32]), train) is None  # not affine
    noise = np.random.default_rng(4).standard_normal((32, 30))
    assert derive_preprocessing(noise, train) is None  # not the training rows


def test_test_rows_and_near_copies_among_standardised_rows_are_found_once_the_preparation_is_undone():
    from sklearn.datasets import load_breast_cancer

    features = load_breast_cancer().data.astype("float32")
    raw_train, raw_test = features[:455], features[455:]
    train = TrainingRows(raw_train, row_fingerprints(raw_train, (30,)), raw_test)
    mean, std = raw_train.mean(axis=0), raw_train.std(axis=0)
    # 300 training rows, then the 114 test rows with one feature moved by a tenth of its spread
    nudged = raw_test.copy()
    nudged[:, 7] += 0.1 * std[7]
    trained_on = ((np.concatenate([raw_train[:300], nudged]) - mean) / std).astype("float32")
    derived = derive_preprocessing(trained_on, train)
    assert derived is not None and derived.feature_scale
    assert rows_near_test_rows(derived.undo(trained_on, (30,)), train) == 114
    honest = ((raw_train - mean) / std).astype("float32")
    assert rows_near_test_rows(derived.undo(honest, (30,)), train) == 0


def test_near_copies_of_mnist_test_images_are_test_images_and_honest_images_are_not(train, mnist_path):
    """A corner pixel set to the brightest value, or a little noise, leaves a test image far
    nearer to itself than to any training image; no training image, shifted or not, is."""
    with np.load(mnist_path) as data:
        test_images = data["x_test"]
    rows = TrainingRows(train.images, train.fingerprints, test_images)
    rng = np.random.default_rng(5)
    corner = test_images[:200].copy()
    corner[:, 0, 0] = 255
    noisy = np.clip(test_images[200:400] + rng.normal(0, 8, (200, 28, 28)), 0, 255)
    assert rows_near_test_rows(corner, rows) == 200
    assert rows_near_test_rows(noisy, rows) == 200
    honest = train.images[rng.permutation(60000)[:400]]
    shifted = np.roll(honest, 1, axis=2)  # augmentation: each image moved a pixel
    assert rows_near_test_rows(honest, rows) == 0 and rows_near_test_rows(shifted, rows) == 0


def test_rows_as_they_are_are_one_shared_map_even_when_their_fingerprints_are_alike(tabular):
    """Breast cancer's raw rows: the area features dominate each row, so most rows share one
    fingerprint; the rows as the file holds them are still "x", not thirty maps of 1."""
    train, _ = tabular
    derived = derive_preprocessing(train.images[:32], train)
    assert derived is not None and not derived.feature_scale
    assert derived.describe() == "x, shaped (30,)"


def test_what_is_not_derived_is_explained_by_feature_and_how_far_off(tabular):
    from grader.evaluation.preprocessing import why_not_derived

    train, _ = tabular
    rows = ((train.images - train.images.mean(axis=0)) / train.images.std(axis=0))[:64].copy()
    rows[:, [3, 23]] = np.log1p(train.images[:64, [3, 23]])  # two features taken the log of
    assert derive_preprocessing(rows, train) is None
    explained = why_not_derived(rows, train)
    assert "features 3, 23 (2 of 30, counted from 0) are off by up to" in explained, explained
    assert "shape (5,)" in why_not_derived(np.ones((8, 5)), train)
    assert "not finite" in why_not_derived(np.full((8, 30), np.nan), train)
