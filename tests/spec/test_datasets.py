import dataclasses

import numpy as np
import pytest

from grader.errors import DataError
from grader.spec.datasets import load_dataset, locate_data


@pytest.fixture
def offline_spec(spec, monkeypatch, tmp_path):
    monkeypatch.delenv("GRADER_MNIST", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return dataclasses.replace(spec.data, url=None)


def test_offline_with_no_copy_names_both_ways_to_provide_the_data(offline_spec, tmp_path):
    with pytest.raises(DataError) as raised:
        locate_data(offline_spec)
    message = str(raised.value)
    assert "--data PATH/TO/mnist.npz" in message and "GRADER_MNIST" in message
    assert str(tmp_path / "keras" / "datasets" / "mnist.npz") in message


def test_explicit_path_then_environment_then_keras_cache(offline_spec, tmp_path, monkeypatch):
    explicit, from_env = tmp_path / "a.npz", tmp_path / "b.npz"
    cached = tmp_path / "keras" / "datasets" / "mnist.npz"
    for path in (explicit, from_env, cached):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    assert locate_data(offline_spec) == cached
    monkeypatch.setenv("GRADER_MNIST", str(from_env))
    assert locate_data(offline_spec) == from_env
    assert locate_data(offline_spec, explicit) == explicit


def test_a_missing_explicit_file_is_an_error(offline_spec, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        locate_data(offline_spec, tmp_path / "missing.npz")


def test_arrays_of_the_wrong_shape_are_refused(offline_spec, tmp_path):
    path = tmp_path / "small.npz"
    np.savez(
        path,
        x_train=np.zeros((10, 28, 28), "uint8"),
        y_train=np.zeros(10, "uint8"),
        x_test=np.zeros((5, 28, 28), "uint8"),
        y_test=np.zeros(5, "uint8"),
    )
    with pytest.raises(DataError, match=r"x_train has shape \(10, 28, 28\), expected \(60000, 28, 28\)"):
        load_dataset(path, offline_spec)


def test_a_file_that_is_not_npz_is_refused(offline_spec, tmp_path):
    path = tmp_path / "junk.npz"
    path.write_text("not a zip")
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        load_dataset(path, offline_spec)


def test_full_mnist_loads(mnist_path, spec):
    dataset = load_dataset(mnist_path, spec.data)
    assert dataset.x_train.shape == (60000, 28, 28) and dataset.y_test.shape == (10000,)
