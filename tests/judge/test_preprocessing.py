"""The evaluator prepares test images as the notebook prepared its training images, derived
from rows the notebook trained on and verified against the grader's own raw images."""

import numpy as np
import pytest

from grader.judge.preprocessing import derive_preprocessing
from grader.protocol.fingerprints import row_fingerprints


@pytest.fixture(scope="module")
def train(mnist_path):
    with np.load(mnist_path) as data:
        images = data["x_train"]
    return images, row_fingerprints(images, (28, 28))


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
    images, fingerprints = train
    rows = images[100:132]  # what the kernel exports: the first rows of x, here some training rows
    preprocessing = derive_preprocessing(prepare(rows), images, fingerprints)
    assert preprocessing is not None and preprocessing.shape == shape
    assert preprocessing.describe().startswith(description)
    test_rows = images[5000:5010]
    assert np.allclose(preprocessing.apply(test_rows), prepare(test_rows), atol=1e-4)


def test_what_cannot_be_verified_is_not_derived(train):
    images, fingerprints = train
    rows = images[100:132].reshape(-1, 784).astype("float32")
    per_pixel = (rows - rows.mean(axis=0)) / (rows.std(axis=0) + 1)  # each pixel its own scale
    assert derive_preprocessing(per_pixel, images, fingerprints) is None
    noise = np.random.default_rng(0).random((32, 784))  # not training images at all
    assert derive_preprocessing(noise, images, fingerprints) is None
