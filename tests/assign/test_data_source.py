"""Which data a solution trains on, read from its code and its folder."""

from __future__ import annotations

import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.assign.data_source import DataSource, find_data_source
from grader.errors import SpecError
from grader.spec.datasets import write_keras_layout


def solution(*code: str):
    return new_notebook(cells=[new_markdown_cell("# An exercise"), *(new_code_cell(source) for source in code)])


def keras_layout(path):
    arrays = {key: np.zeros((2, 8, 8) if key.startswith("x") else (2,), "uint8") for key in
              ("x_train", "y_train", "x_test", "y_test")}  # fmt: skip
    write_keras_layout(path, arrays)
    return path


@pytest.mark.parametrize(
    "code",
    [
        "from keras.datasets import mnist\n(x_train, y_train), (x_test, y_test) = mnist.load_data()",
        "import tensorflow as tf\ndata = tf.keras.datasets.mnist.load_data ()",
    ],
)
def test_a_keras_loader_is_found_with_where_keras_downloads_it(tmp_path, code):
    found = find_data_source(solution("import keras", code), tmp_path)
    assert found.keras_dataset == "mnist" and found.file is None and found.url and found.url.endswith("mnist.npz")
    assert found.download_sha256 == "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


def test_a_file_beside_the_solution_that_its_code_opens_is_the_data(tmp_path):
    keras_layout(tmp_path / "digits.npz")
    (tmp_path / "unrelated.npz").write_bytes(b"")
    for leftover in ("cnn.keras", "README.md", "curves.png"):  # named in the code, but no data
        (tmp_path / leftover).write_bytes(b"")
    code = (
        'with np.load("digits.npz") as data:\n    x = data["x_train"]\n'
        'cnn.save("cnn.keras")  # see "README.md", \'curves.png\''
    )
    found = find_data_source(solution(code), tmp_path)
    assert found == DataSource(file=tmp_path / "digits.npz")
    # also when the notebook names it by a path of the author's own machine
    named = solution("data = np.load('/home/author/course/digits.npz')")
    assert find_data_source(named, tmp_path).file == tmp_path / "digits.npz"


@pytest.mark.parametrize(
    ("files", "code", "message"),
    [
        ({"data.csv": b"a,b\n1,2\n"}, 'pd.read_csv("data.csv")', "data.csv, which is not an .npz file. The grader"),
        (
            {"a.npz": None, "b.npz": None},
            'np.load("a.npz"); np.load("b.npz")',
            r"several files beside it \(a.npz, b.npz\)",
        ),
        (
            {},
            "(x, y), _ = cifar10.load_data()",
            "keras.datasets.cifar10.load_data\\(\\), whose file Keras keeps otherwise.*pass --data FILE.npz",
        ),
        ({}, "x = np.random.rand(10, 8)", "found no data in the solution"),
        ({}, "mnist.load_data(); fashion_mnist.load_data()", "several keras.datasets loaders"),
    ],
)
def test_data_the_grader_cannot_serve_is_refused_saying_what_to_do(tmp_path, files, code, message):
    for name, content in files.items():
        keras_layout(tmp_path / name) if content is None else (tmp_path / name).write_bytes(content)
    with pytest.raises(SpecError, match=message):
        find_data_source(solution(code), tmp_path)


def test_an_npz_without_the_training_and_test_rows_asks_for_keras_layout(tmp_path):
    np.savez(tmp_path / "features.npz", x=np.zeros((3, 4)), y=np.zeros(3))
    with pytest.raises(SpecError, match=r"features.npz lacks x_train, y_train, x_test, y_test, so which rows"):
        find_data_source(solution('np.load("features.npz")'), tmp_path)


def test_a_loader_whose_file_is_not_one_npz_is_served_from_the_arrays_given_with_data(tmp_path):
    arrays = keras_layout(tmp_path / "fashion.npz")
    found = find_data_source(solution("(x, y), _ = keras.datasets.fashion_mnist.load_data()"), tmp_path, arrays)
    assert found == DataSource(keras_dataset="fashion_mnist", file=arrays)
    assert found.describe() == "keras.datasets.fashion_mnist, served from the data file fashion.npz"
