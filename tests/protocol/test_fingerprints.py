"""Fingerprints recognise an image through what notebooks do to it, and tell images apart."""

import numpy as np
import pytest

from grader.protocol.fingerprints import count_test_rows, row_fingerprints

SHAPE = (28, 28)


@pytest.fixture(scope="module")
def digits():
    """Blobs in the middle of 28x28 images, of random shapes and grey levels, no two alike."""
    rng = np.random.default_rng(0)
    images = np.zeros((200, 28, 28), dtype="uint8")
    images[:, 6:22, 6:22] = (rng.random((200, 16, 16)) > 0.6) * rng.integers(130, 255, (200, 16, 16))
    return images


def test_fingerprints_survive_scaling_standardising_flattening_and_float_conversion(digits):
    plain = row_fingerprints(digits, SHAPE)
    for prepared in (
        digits.reshape(-1, 784).astype("float32") / 255,
        (digits - digits.mean()) / digits.std(),
        (digits.astype("float32") - 127.5) / 127.5,
        digits[..., None].astype("float64"),
    ):
        assert np.array_equal(row_fingerprints(prepared, SHAPE), plain)


def test_fingerprints_survive_moving_the_digit_and_padding_the_image(digits):
    plain = row_fingerprints(digits, SHAPE)
    assert np.array_equal(row_fingerprints(np.roll(digits, (2, -3), axis=(1, 2)), SHAPE), plain)
    padded = np.pad(digits, ((0, 0), (2, 2), (2, 2)))[..., None] / 255  # LeNet's 32x32x1
    assert np.array_equal(row_fingerprints(padded, SHAPE), plain)


def test_different_images_get_different_fingerprints(digits):
    assert len(set(row_fingerprints(digits, SHAPE).tolist())) == len(digits)
    changed = digits.copy()
    changed[:, 14, 14] = np.where(changed[:, 14, 14] > 0, 0, 200)  # one pixel flipped in each
    assert not np.isin(row_fingerprints(changed, SHAPE), row_fingerprints(digits, SHAPE)).any()


def test_rows_that_are_not_square_images_are_fingerprinted_as_they_are():
    rng = np.random.default_rng(1)
    rows = rng.random((30, 10))
    assert len(set(row_fingerprints(rows, SHAPE).tolist())) == 30
    assert np.array_equal(row_fingerprints(rows * 3 + 1, SHAPE), row_fingerprints(rows, SHAPE))


def test_test_rows_are_counted_apart_from_training_rows(digits):
    train, test = row_fingerprints(digits[:150], SHAPE), row_fingerprints(digits[150:], SHAPE)
    mixed = np.concatenate([train[:5], test[:7]])
    assert count_test_rows(mixed, train, test) == 7
    assert count_test_rows(mixed, np.concatenate([train, test[:2]]), test) == 5  # in both sets: not counted


def test_on_mnist_training_images_are_never_counted_and_13_test_images_look_like_training_ones(mnist_path):
    with np.load(mnist_path) as data:
        train, test = row_fingerprints(data["x_train"], SHAPE), row_fingerprints(data["x_test"], SHAPE)
    assert count_test_rows(train, train, test) == 0
    assert int(np.isin(test, train).sum()) == 13  # the figure docs/security.md gives
    assert count_test_rows(test, train, test) == 10_000 - 13
