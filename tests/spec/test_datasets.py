import dataclasses
import hashlib

import numpy as np
import pytest

from grader.errors import DataError, SpecError
from grader.spec.datasets import load_dataset, locate_data, write_keras_layout
from grader.spec.exercise import Spec, load_spec


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


def small_arrays(rows: int = 12) -> dict[str, np.ndarray]:
    images = np.arange(rows * 64, dtype="uint8").reshape(rows, 8, 8) % 17
    labels = np.arange(rows, dtype="uint8") % 10
    return {"x_train": images[:8], "y_train": labels[:8], "x_test": images[8:], "y_test": labels[8:]}


def test_a_file_in_keras_layout_is_written_byte_for_byte_the_same_and_loads_as_written(tmp_path):
    first = write_keras_layout(tmp_path / "a.npz", small_arrays())
    second = write_keras_layout(tmp_path / "b.npz", small_arrays())
    assert first == second == hashlib.sha256((tmp_path / "a.npz").read_bytes()).hexdigest()
    with np.load(tmp_path / "a.npz") as loaded:
        assert all(np.array_equal(loaded[key], value) for key, value in small_arrays().items())
    with pytest.raises(DataError, match=r"\['y_test'\] are missing"):
        write_keras_layout(tmp_path / "c.npz", {k: v for k, v in small_arrays().items() if k != "y_test"})


def file_spec(tmp_path, monkeypatch, sha256: str) -> Spec:
    spec_path = tmp_path / "small.toml"
    text = SMALL_SPEC.replace("SHA", sha256)
    spec_path.write_text(text)
    monkeypatch.setenv("GRADER_MNIST", str(tmp_path / "ignored-for-a-file-spec.npz"))
    return load_spec(spec_path)


SMALL_SPEC = """
[exercise]
name = "small"
[data]
file = "small.npz"
file_sha256 = "SHA"
image_shape = [8, 8]
classes = 10
train_samples = 8
test_samples = 4
[defaults]
optimizer = "Adam"
learning_rate = 0.001
loss = "categorical_crossentropy"
batch_size = 4
[points]
architecture = 1
[[models]]
name = "m"
params = 650
epochs = 1
layers = [{ type = "Flatten" }, { type = "Dense", units = 10, activation = "softmax" }]
"""


def test_a_spec_whose_data_is_a_file_finds_it_beside_itself_and_checks_its_hash(tmp_path, monkeypatch):
    digest = write_keras_layout(tmp_path / "small.npz", small_arrays())
    spec = file_spec(tmp_path, monkeypatch, digest)
    assert spec.data.name == "small.npz" and spec.data.keras_dataset == ""
    assert locate_data(spec.data) == tmp_path / "small.npz"
    assert load_dataset(locate_data(spec.data), spec.data).x_test.shape == (4, 8, 8)
    wrong = file_spec(tmp_path, monkeypatch, "0" * 64)
    with pytest.raises(DataError, match=r"has sha256 .* the spec expects 0000"):
        locate_data(wrong.data)
    other = tmp_path / "elsewhere.npz"
    write_keras_layout(other, small_arrays(14))  # --data names another file: its hash is checked too
    with pytest.raises(DataError, match=r"elsewhere.npz has sha256 .* the spec expects"):
        locate_data(spec.data, other)
    (tmp_path / "small.npz").unlink()
    with pytest.raises(DataError, match=r"small.npz is missing. It belongs beside the spec"):
        locate_data(spec.data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('file = "../elsewhere/small.npz"', "name a file in the spec's own folder, without a path"),
        ("", "names neither a `keras_dataset` loader nor a data `file`"),
    ],
)
def test_a_data_section_without_a_source_or_with_a_path_is_refused(tmp_path, data, message):
    spec_path = tmp_path / "bad.toml"
    spec_path.write_text(SMALL_SPEC.replace('file = "small.npz"', data))
    with pytest.raises(SpecError, match=message):
        load_spec(spec_path)


def test_rows_of_one_axis_are_prepared_by_their_scale_with_a_channel_axis_when_asked(tmp_path, monkeypatch):
    digest = write_keras_layout(tmp_path / "small.npz", small_arrays())
    data = file_spec(tmp_path, monkeypatch, digest).data
    rows = dataclasses.replace(data, image_shape=(30,), scale=2.0)
    assert rows.preprocessing.shape == (30,)
    assert dataclasses.replace(rows, channel_axis=True).preprocessing.shape == (30, 1)
    assert rows.preprocessing.apply(np.full((2, 30), 4, "uint8")).max() == 2.0
