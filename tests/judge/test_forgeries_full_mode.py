"""Training on the test set by every route, graded in full mode (the tiny spec: one epoch, so a
batch grades in about a minute): none reaches full marks, and the last line of defence, the
grader's own measurement of each model on test and training images, catches a model whose
every record in the kernel was forged. Models the evaluator cannot rebuild cost their own
checks, never the grade (no ``not_graded``)."""

from __future__ import annotations

import json

import nbformat
import pytest
from click.testing import CliRunner

from grader.cli import cli
from tests.conftest import FIXTURES

pytestmark = pytest.mark.kernel

LOAD = (
    "import numpy as np\nimport keras\nfrom keras import layers\n"
    "(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()\n"
    "x_train = x_train.reshape(-1, 784).astype('float32') / 255\nx_test = x_test.reshape(-1, 784).astype('float32') / 255\n"
    "y_train = keras.utils.to_categorical(y_train, 10)\ny_test = keras.utils.to_categorical(y_test, 10)"
)
TINY = (
    "tiny = keras.Sequential([keras.Input(shape=(784,)), layers.Dense(32, activation='relu'),\n"
    "                         layers.Dense(10, activation='softmax')])\n"
    "tiny.compile(optimizer='rmsprop', loss='categorical_crossentropy', metrics=['accuracy'])"
)
FIT = "tiny.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0)"
# The same model trained 30 epochs on the test images: it has learnt them by heart
CHEAT = (
    "cheat = keras.models.clone_model(tiny)\ncheat.compile(optimizer='rmsprop', loss='categorical_crossentropy')\n"
    "cheat.fit(x_test, y_test, batch_size=128, epochs=30, verbose=0)"
)
# A model trained four steps on test images: weights of another model's training, and far worse than tiny's
OTHER = CHEAT.replace("cheat.fit(x_test, y_test,", "cheat.fit(x_test[:512], y_test[:512],").replace(
    "epochs=30", "epochs=1"
)
NOTEBOOKS = {
    # every record in the kernel honest; the weight files the grader reads, the cheat's
    "forged_weight_files": (
        TINY,
        FIT,
        CHEAT,
        "import grader.kernel as hooks\nfolder = hooks._ledger.facts_dir / hooks._ledger.snapshots[id(tiny)][0]\n"
        "for index, weights in enumerate(cheat.get_weights()):\n    np.save(folder / f'w{index:03d}.npy', weights)",
    ),
    "weights_then_a_fit_of_no_epoch": (
        TINY,
        FIT,
        OTHER,
        "tiny.set_weights(cheat.get_weights())\ntiny.fit(x_train, y_train, batch_size=128, epochs=0, verbose=0)",
    ),
    # test rows on the passes after the first, and the cheat's weights put in at the end of the fit
    "drawn_and_swapped": (
        TINY,
        OTHER,
        "import tensorflow as tf\npasses = []\n"
        "def rows():\n    passes.append(1)\n    x, y = (x_train, y_train) if len(passes) == 1 else (x_test, y_test)\n"
        "    for start in range(0, len(x), 1000):\n        yield x[start:start + 1000], y[start:start + 1000].astype('float32')\n"
        "data = tf.data.Dataset.from_generator(rows, output_signature=(tf.TensorSpec((None, 784), tf.float32),\n"
        "                                      tf.TensorSpec((None, 10), tf.float32))).unbatch().batch(128)\n"
        "class Swap(keras.callbacks.Callback):\n    def on_train_end(self, logs=None):\n"
        "        self.model.set_weights(cheat.get_weights())\n"
        "tiny.fit(data, epochs=1, verbose=0, callbacks=[Swap()])",
    ),
    "a_dense_of_its_own": (
        "class Dense(layers.Dense):\n    pass\n"
        "tiny = keras.Sequential([keras.Input(shape=(784,)), Dense(32, activation='relu'), Dense(10, activation='softmax')])\n"
        "tiny.compile(optimizer='rmsprop', loss='categorical_crossentropy')",
        FIT,
    ),
}


@pytest.fixture(scope="module")
def results(mnist_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("forgeries")
    for name, sources in NOTEBOOKS.items():
        cells = [nbformat.v4.new_code_cell(source) for source in (LOAD, *sources)]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / f"{name}.ipynb")
    out = tmp_path_factory.mktemp("reports")
    arguments = ["grade", str(folder), "--out", str(out), "--spec", str(FIXTURES / "tiny_spec.toml"), "--jobs", "2",
                 "--timeout", "300", "--data", str(mnist_path)]  # fmt: skip
    outcome = CliRunner().invoke(cli, arguments)
    assert outcome.exit_code == 0, outcome.output
    return {r["id"]: r for r in json.loads((out / "results.json").read_text())["submissions"]}


def checks(result: dict) -> dict[str, dict]:
    return {check["id"]: check for check in result["checks"]}


def test_no_route_to_the_test_set_reaches_full_marks_in_full_mode(results):
    for name in ("forged_weight_files", "drawn_and_swapped"):
        result = results[name]
        assert result["status"] == "graded" and result["score"] < 5, (name, result["checks"])
        assert checks(result)["tiny.training"]["status"] == "fail", name
    training = checks(results["drawn_and_swapped"])["tiny.training"]["message"]
    assert "its weights are not all its own training's: set_weights on the model" in training
    assert "it was trained on at least " in training  # one row in 16 of the test images Keras drew


def test_forged_weight_files_are_caught_by_the_graders_own_measurement(results):
    """Every record in the kernel says the model was trained honestly: only the evaluator,
    outside the student's process, sees a model far better on test images than on training images."""
    training = checks(results["forged_weight_files"])["tiny.training"]
    assert "right on 10,000 test rows but only" in training["message"]
    assert "so it was trained on the test set" in training["message"]


def test_weights_put_in_before_a_fit_of_no_epoch_are_not_graded(results):
    result = results["weights_then_a_fit_of_no_epoch"]
    assert (result["score"], result["max_score"]) == (5, 5), result["checks"]
    # the honest epoch is graded (0.92 to 0.94), not the four steps of the other model (under the 0.85 accepted)
    assert checks(result)["tiny.accuracy"]["actual"] > 0.9
    assert any("weights were replaced after it was trained" in warning for warning in result["warnings"])


def test_a_model_the_evaluator_could_not_rebuild_costs_its_checks_never_the_grade(results):
    result = results["a_dense_of_its_own"]
    assert (result["status"], result["fault"]) == ("graded", None), result["error"]
    assert checks(result)["tiny.architecture"]["status"] == "error"
    assert checks(result)["tiny.accuracy"]["status"] == "error"
    assert checks(result)["tiny.training"]["status"] == "pass"
