import numpy as np

from grader.protocol.fingerprints import count_test_rows, row_fingerprints


def test_fingerprints_survive_scaling_flattening_and_float_conversion():
    rng = np.random.default_rng(0)
    images = (rng.random((50, 28, 28)) > 0.8).astype("uint8") * rng.integers(1, 255, (50, 28, 28), dtype="uint8")
    prepared = images.reshape(50, 784).astype("float32") / 255
    assert np.array_equal(row_fingerprints(images), row_fingerprints(prepared))


def test_test_rows_are_counted_apart_from_training_rows():
    rng = np.random.default_rng(1)
    train = row_fingerprints(rng.random((30, 10)) > 0.5)
    test = row_fingerprints(rng.random((20, 10)) > 0.5)
    mixed = np.concatenate([train[:5], test[:7]])
    assert count_test_rows(mixed, train, test) == 7
    assert count_test_rows(mixed, np.concatenate([train, test[:2]]), test) == 5  # in both sets: not counted
