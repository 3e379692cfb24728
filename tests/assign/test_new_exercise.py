"""`grader new` and `grader validate` end to end, in real kernels: the digits exercise authored
from its solution (the spec it writes is the one shipped in reference/), validated, and a wrong
variant in a folder without the data file graded, opening the file by its relative name."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import nbformat
import numpy as np
import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.judge.pipeline import GradingOptions, grade_safely, prepare_context
from tests.assign.conftest import REFERENCE, shipped_exercise, write_reference_data

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def authored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits exercise as `grader new` writes it into a course folder of its own, from the
    solution and its data in the author's folder (one calibration run, to be quick)."""
    author, course = tmp_path_factory.mktemp("author"), tmp_path_factory.mktemp("course")
    shutil.copy(REFERENCE / "digits_cnn_solution.ipynb", author)
    write_reference_data(author)
    outcome = CliRunner().invoke(
        cli,
        ["new", str(author / "digits_cnn_solution.ipynb"), "--out", str(course / "digits_cnn.toml"), "--seeds", "1"],
    )
    assert outcome.exit_code == 0, outcome.output
    assert "cnn" in outcome.output and "5,130" in outcome.output and "x / 16, shaped (8, 8, 1)" in outcome.output
    return course / "digits_cnn.toml"


def test_grader_new_writes_the_shipped_spec_its_handout_and_calibration_beside_the_data(authored):
    course = authored.parent
    assert authored.read_text() == (REFERENCE / "digits_cnn.toml").read_text()
    names = {path.name for path in course.iterdir()}
    assert {
        "digits.npz",
        "digits_cnn_solution.ipynb",
        "digits_cnn_handout.ipynb",
        "digits_cnn.calibration.json",
    } <= names
    handout = nbformat.read(course / "digits_cnn_handout.ipynb", as_version=4)
    assert "# YOUR CODE HERE" in handout.cells[6].source and "Sequential" not in handout.cells[6].source
    runs = json.loads((course / "digits_cnn.calibration.json").read_text())["calibrations"]
    assert [len(entry["models"]["cnn"]["runs"]) for entry in runs.values()] == [1]


def test_the_authored_exercise_validates(authored):
    outcome = CliRunner().invoke(cli, ["validate", "--spec", str(authored)])
    assert outcome.exit_code == 0, outcome.output
    assert "ok solution: full marks in full mode (8 of 8)" in outcome.output
    assert "ok handout: runs in quick mode and scores 0; 4 checks fail, each saying what to build" in outcome.output


def test_a_wrong_variant_elsewhere_loses_the_checks_it_gets_wrong_and_no_other(authored, tmp_path):
    """The notebook opens digits.npz by its relative name from a folder without it: the
    grader places the spec's file beside it."""
    solution = nbformat.read(authored.parent / "digits_cnn_solution.ipynb", as_version=4)
    solution.cells[6].source = solution.cells[6].source.replace("layers.Dense(32", "layers.Dense(48")
    variant = tmp_path / "submissions" / "wide.ipynb"
    variant.parent.mkdir()
    nbformat.write(solution, variant)
    result = grade_safely(variant, prepare_context(GradingOptions(quick=True), authored)).result
    verdicts = {check.id: check.status for check in result.checks}
    assert verdicts == {"cnn.architecture": "fail", "cnn.params": "fail", "cnn.optimizer": "pass",
                        "cnn.training": "pass", "cnn.accuracy": "skipped"}, result.checks  # fmt: skip
    assert "Dense(32, relu)" in next(check.message for check in result.checks if check.id == "cnn.architecture")


@pytest.mark.parametrize(
    ("stem", "cell", "wrong", "right"),
    [
        # a binary classifier (one sigmoid unit, binary cross-entropy) with 8 units for 16
        ("breast_cancer", 4, 'layers.Dense(8, activation="relu")', 'layers.Dense(16, activation="relu")'),
        # a sequence model (Embedding, GRU) reading with an LSTM
        ("marker_sequences", 4, "layers.LSTM(16)", "layers.GRU(16)"),
        # a regression (one linear unit, the mean squared error) with a layer of 24 for 16
        ("diabetes", 4, 'layers.Dense(24, activation="relu")', 'layers.Dense(16, activation="relu")'),
    ],
)
def test_a_wrong_variant_of_the_binary_the_sequence_and_the_regression_exercise_loses_architecture_and_size(
    stem, cell, wrong, right, tmp_path
):
    spec = shipped_exercise(stem, tmp_path)
    context = prepare_context(GradingOptions(quick=True), spec)
    solution = nbformat.read(tmp_path / f"{stem}_solution.ipynb", as_version=4)
    assert right in solution.cells[cell].source
    solution.cells[cell].source = solution.cells[cell].source.replace(right, wrong)
    variant = tmp_path / "submissions" / "variant.ipynb"
    variant.parent.mkdir()
    nbformat.write(solution, variant)
    result = grade_safely(variant, context).result
    model = context.spec.models[0].name
    verdicts = {check.id.removeprefix(f"{model}."): check.status for check in result.checks}
    assert verdicts == {"architecture": "fail", "params": "fail", "optimizer": "pass", "training": "pass",
                        "accuracy": "skipped"}, result.checks  # fmt: skip


def test_a_regression_is_graded_in_full_mode_by_the_error_the_grader_measures(tmp_path):
    """The evaluator measures the solution's mean absolute error on the test rows, in its own
    process; the check passes it against the calibration's range, lower being better."""
    spec = shipped_exercise("diabetes", tmp_path)
    result = grade_safely(
        tmp_path / "diabetes_solution.ipynb", prepare_context(GradingOptions(quick=False), spec)
    ).result
    check = next(check for check in result.checks if check.id == "regressor.accuracy")
    assert check.status == "pass" and check.message.startswith("Test mean absolute error ")
    assert 30 < check.actual < check.expected["max"] and result.score == result.max_score
    assert result.models["regressor"].test_value == check.actual
    # results.json names it for what it is
    record = result.models["regressor"].to_dict()
    assert record["metric"] == "mean_absolute_error" and record["test_mean_absolute_error"] == check.actual
    assert "test_accuracy" not in record


@pytest.mark.slow  # 30 s: the default run keeps the digits exercise's own data file end to end
def test_a_loader_whose_file_is_not_one_npz_is_served_from_the_copy_beside_the_spec(tmp_path):
    """A solution calling keras.datasets.fashion_mnist.load_data(): `grader new --data` copies
    the arrays beside the spec and names both the loader and the file; the grader serves the
    copy to that loader, offline, and the exercise validates."""
    from grader.spec.datasets import write_keras_layout

    generator = np.random.RandomState(0)
    images = generator.randint(0, 60, size=(700, 28, 28)).astype("uint8")
    labels = generator.randint(0, 4, size=700).astype("uint8")
    for label in range(4):  # a bright quarter of the image says the class
        rows = labels == label
        top, left = divmod(label, 2)
        images[rows, 14 * top : 14 * top + 14, 14 * left : 14 * left + 14] += 150
    arrays = tmp_path / "fashion_arrays.npz"
    split = {"x_train": images[:600], "y_train": labels[:600], "x_test": images[600:], "y_test": labels[600:]}
    write_keras_layout(arrays, split)
    solution = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import keras\n"
        "(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()\n"
        "x_train, x_test = x_train.reshape(-1, 784) / 255, x_test.reshape(-1, 784) / 255\n"
        "### BEGIN SOLUTION\n"
        "clothes = keras.Sequential([keras.Input((784,)), keras.layers.Dense(16, activation='relu'),\n"
        "                            keras.layers.Dense(4, activation='softmax')])\n"
        "clothes.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
        "clothes.fit(x_train, y_train, batch_size=64, epochs=3, validation_data=(x_test, y_test), verbose=0)\n"
        "### END SOLUTION"
    )])  # fmt: skip
    (tmp_path / "author").mkdir()
    nbformat.write(solution, tmp_path / "author" / "clothes_solution.ipynb")
    spec = tmp_path / "course" / "clothes.toml"
    arguments = ["new", str(tmp_path / "author" / "clothes_solution.ipynb"), "--out", str(spec), "--seeds", "1",
                 "--data", str(arrays)]  # fmt: skip
    outcome = CliRunner().invoke(cli, arguments)
    assert outcome.exit_code == 0, outcome.output
    data = tomllib.loads(spec.read_text())["data"]
    assert (data["keras_dataset"], data["file"]) == ("fashion_mnist", "fashion_arrays.npz")
    assert (spec.parent / "fashion_arrays.npz").read_bytes() == arrays.read_bytes()
    outcome = CliRunner().invoke(cli, ["validate", "--spec", str(spec)])
    assert outcome.exit_code == 0, outcome.output
