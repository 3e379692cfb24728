"""The spec `grader new` writes, from plain data: models read from a run, the inputs'
preparation in the spec's terms, TOML that the spec loader reads back to the same models."""

from __future__ import annotations

import dataclasses
import math
import tomllib

import numpy as np
import pytest

from grader.assign.data_source import DataSource
from grader.assign.draft import (
    DraftModel,
    ExerciseDraft,
    accuracy_margin,
    draft_model,
    label_classes,
    render_spec,
    spec_layer,
    spec_preparation,
    task_of,
)
from grader.errors import SpecError
from grader.judge.facts import CompileFacts, FitFacts, ModelFacts
from grader.spec.architecture import Architecture
from grader.spec.datasets import targets
from grader.spec.exercise import load_spec
from grader.spec.layers import Layer
from grader.spec.preprocessing import Preprocessing

CNN = (
    Layer.from_dict({"type": "Conv2D", "filters": 16, "kernel_size": [3, 3], "activation": "relu"}),
    Layer.from_dict({"type": "MaxPooling2D", "pool_size": [2, 2]}),
    Layer("Flatten"),
    Layer("Dense", units=32, activation="relu", l2=0.0001),
    Layer("Dense", units=10, activation="softmax"),
)


def fit(epochs: int = 20, initial_epoch: int = 0, batch_size: int | None = 32) -> FitFacts:
    return FitFacts(batch_size, epochs, initial_epoch, 0.0, 1438, 0, {}, [], True)


def trained(loss: str = "categorical_crossentropy", fits: tuple[FitFacts, ...] = (fit(),)) -> ModelFacts:
    return ModelFacts(
        name="cnn", origin="fit", architecture=Architecture((8, 8, 1), CNN), problem=None,
        compile=CompileFacts("Adam", 0.0010000000474974513, loss), fits=fits, weights=(), cell=3,
    )  # fmt: skip


def test_a_trained_model_becomes_a_fixed_model_with_its_count_and_training():
    model = draft_model(trained(fits=(fit(10), fit(25, initial_epoch=10, batch_size=64))))
    assert model == DraftModel("cnn", CNN, 16 * 9 + 16 + 144 * 32 + 32 + 330, "Adam", 0.001,
                               "categorical_crossentropy", 64, 25)  # fmt: skip


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            trained(loss="binary_crossentropy"),
            "loss 'binary_crossentropy'.*or two .binary_crossentropy, one sigmoid unit",
        ),
        (trained(loss="mean_squared_error"), "loss 'mean_squared_error'.*regressions .*one linear unit"),
        (trained(loss="poisson"), "loss 'poisson'"),
        (trained(fits=()), "was not compiled and trained"),
        (trained(fits=(fit(batch_size=None),)), "does not show its batch size"),
    ],
)
def test_a_model_the_spec_cannot_state_stops_grader_new_saying_why(model, message):
    with pytest.raises(SpecError, match=message):
        draft_model(model)


def test_a_binary_classifier_is_one_sigmoid_unit_trained_on_binary_cross_entropy():
    binary = trained(loss="binary_crossentropy")
    one_unit = Architecture(
        (30,), (Layer("Dense", units=16, activation="relu"), Layer("Dense", units=1, activation="sigmoid"))
    )
    model = draft_model(dataclasses.replace(binary, architecture=one_unit))
    assert (model.loss, model.params) == ("binary_crossentropy", 30 * 16 + 16 + 17)


def test_a_layer_is_written_with_only_the_options_that_matter():
    assert spec_layer(CNN[0]) == {"type": "Conv2D", "activation": "relu", "filters": 16, "kernel_size": [3, 3]}
    assert spec_layer(CNN[1]) == {"type": "MaxPooling2D"}  # Keras' default pool, strides as the pool
    assert spec_layer(CNN[3]) == {"type": "Dense", "units": 32, "activation": "relu", "l2": 0.0001}
    assert all(Layer.from_dict(spec_layer(layer)) == layer for layer in CNN)


@pytest.mark.parametrize(
    ("derived", "keys", "note"),
    [
        (
            Preprocessing(np.float32(1 / 255), 0.0, (784,)),
            {"flatten": True, "center": 0.0, "scale": 255.0, "pad": 0, "channel_axis": False},
            None,
        ),
        (
            Preprocessing(1 / 16, 0.0, (8, 8, 1)),
            {"flatten": False, "center": 0.0, "scale": 16.0, "pad": 0, "channel_axis": True},
            None,
        ),
        (
            Preprocessing(1 / 255, 0.0, (32, 32, 1), pad=2),
            {"flatten": False, "center": 0.0, "scale": 255.0, "pad": 2, "channel_axis": True},
            None,
        ),
        (
            Preprocessing(1 / 127.5, -1.0, (784,)),
            {"flatten": True, "center": 127.5, "scale": 127.5, "pad": 0, "channel_axis": False},
            None,
        ),
        (
            Preprocessing(1.0, 0.0, (3,), feature_scale=(0.5, 0.25, 1.0), feature_offset=(-1.0, 0.5, 0.0)),
            {"flatten": False, "center": (2.0, -2.0, 0.0), "scale": (2.0, 4.0, 1.0), "pad": 0, "channel_axis": False},
            None,
        ),
        (
            None,
            {"flatten": False, "center": 0.0, "scale": 1.0, "pad": 0, "channel_axis": True},
            "could not be derived",
        ),
    ],
)
def test_the_derived_preparation_in_the_spec_s_terms(derived, keys, note):
    image_shape = {(8, 8, 1): (8, 8), (3,): (3,)}.get(derived.shape if derived else None, (28, 28))
    found, notes = spec_preparation(derived, image_shape, (28, 28, 1))
    assert found == keys
    assert (note is None and not notes) or (note is not None and note in notes[0])


def test_labels_must_be_one_integer_class_per_row_counted_from_0_or_1():
    assert label_classes(np.array([0, 3, 9, 1], dtype="uint8"), "y", 10) == (10, 0)
    # Counted from 1: the solution's model has one output per class (its notebook subtracts 1) …
    assert label_classes(np.array([1, 3, 2]), "y", 3) == (3, 1)
    # … or one more, its output 0 never right: the labels are taken as they are
    assert label_classes(np.array([1, 3, 2]), "y", 4) == (4, 0)
    with pytest.raises(SpecError, match=r"shape \(4, 10\).*one-hot rows"):
        label_classes(np.eye(10)[:4], "y_train", 10)


def test_a_data_file_s_labels_are_read_as_classes_counted_from_0():
    one_hot = np.eye(3, dtype="float32")[[2, 0, 1]]
    assert targets(one_hot, "classification").tolist() == [2, 0, 1]
    assert targets(np.array([[1], [3]]), "classification", first_class=1).tolist() == [0, 2]
    assert targets(np.array([[1.5], [2.5]]), "regression").tolist() == [1.5, 2.5]


def test_the_margin_grows_as_the_test_set_shrinks():
    assert accuracy_margin(10_000) == 0.01  # 2 * 0.3 / 100 = 0.006, at least 0.01
    assert accuracy_margin(359) == 0.035  # 2 * 0.3 / 18.95 = 0.0317, up to a step of 0.005
    assert math.isclose(accuracy_margin(100), 0.065)  # 0.06 exactly lands on 0.065 by float round-up


def test_the_written_spec_loads_back_to_the_models_and_data_of_the_draft(tmp_path):
    (tmp_path / "digits.npz").write_bytes(b"")
    draft = ExerciseDraft(
        name='Digits "CNN"', solution="digits_solution.ipynb", handout="digits_handout.ipynb",
        calibration="digits.calibration.json", source=DataSource(file=tmp_path / "digits.npz"), data_sha256="ab" * 32,
        image_shape=(8, 8), classes=10, train_samples=1438, test_samples=359, margin=0.035, task="classification",
        flatten=False, scale=16.0, pad=0, channel_axis=True, preparation="x / 16, shaped (8, 8, 1)",
        models=(draft_model(trained()),),
        review=("a note for the instructor", "Keras said: ValueError:\nshapes differ = 3"),
    )  # fmt: skip
    text = render_spec(draft)
    assert "# - a note for the instructor" in text and "margin = 0.035" in text
    assert "# - Keras said: ValueError: shapes differ = 3" in text  # one comment line, whatever it held
    (tmp_path / "digits.toml").write_text(text)
    spec = load_spec(tmp_path / "digits.toml")
    assert spec.name == 'Digits "CNN"' and spec.data.file == str(tmp_path / "digits.npz")
    assert spec.data.preprocessing.shape == (8, 8, 1) and spec.data.file_sha256 == "ab" * 32
    (model,) = spec.models
    assert (model.name, model.layers, model.params, model.epochs, model.batch_size) == ("cnn", CNN, 5130, 20, 32)
    assert spec.expected_architecture(model).param_count() == model.params
    assert (
        spec.handout == tmp_path / "digits_handout.ipynb"
        and spec.calibration_path == tmp_path / "digits.calibration.json"
    )


def test_a_loader_s_spec_names_the_loader_and_its_download():
    draft_text = render_spec(
        ExerciseDraft(
            name="MNIST", solution="s.ipynb", handout="h.ipynb", calibration="c.json",
            source=DataSource(keras_dataset="mnist", url="https://example.org/mnist.npz"), data_sha256="cd" * 32,
            image_shape=(28, 28), classes=10, train_samples=60000, test_samples=10000, margin=0.01,
            task="classification", flatten=True, scale=255.0, pad=0, channel_axis=False,
            preparation="x / 255, shaped (784,)", models=(), review=(),
        )
    )  # fmt: skip
    data = tomllib.loads(draft_text)["data"]
    assert data["keras_dataset"] == "mnist" and data["url"] == "https://example.org/mnist.npz" and "file" not in data


def test_a_regression_is_one_linear_unit_on_a_regression_loss_and_its_spec_says_so(tmp_path):
    hidden, output = Layer("Dense", units=16, activation="relu"), Layer("Dense", units=1, activation="linear")
    regression = dataclasses.replace(trained(loss="mse"), architecture=Architecture((10,), (hidden, output)))
    assert task_of(regression) == "regression" and task_of(trained()) == "classification"
    assert task_of(dataclasses.replace(regression, architecture=Architecture((10,), (hidden,)))) is None
    (tmp_path / "diabetes.npz").write_bytes(b"")
    draft = ExerciseDraft(
        name="Diabetes", solution="s.ipynb", handout="h.ipynb", calibration="c.json",
        source=DataSource(file=tmp_path / "diabetes.npz"), data_sha256="ef" * 32, image_shape=(10,), classes=0,
        train_samples=354, test_samples=88, margin=0.1, task="regression", flatten=False, scale=1.0, pad=0,
        channel_axis=False, preparation="x, shaped (10,)", models=(draft_model(regression),), review=(),
    )  # fmt: skip
    (tmp_path / "diabetes.toml").write_text(render_spec(draft))
    spec = load_spec(tmp_path / "diabetes.toml")
    assert spec.data.task == "regression" and spec.data.classes == 0 and spec.models[0].loss == "mse"
    assert tomllib.loads(render_spec(draft))["accuracy"] == {"calibration": "c.json", "relative_margin": 0.1}


def test_a_spec_of_standardised_features_kept_for_validation_loads_back_as_drafted(tmp_path):
    """Per-feature centers and scales, a validation split, classes from 1, both forms of labels'
    loss, and a hostile title: tomlkit writes them, the loader reads the same back."""
    hidden, output = Layer("Dense", units=8, activation="relu"), Layer("Dense", units=3, activation="softmax")
    model = dataclasses.replace(trained(), architecture=Architecture((4,), (hidden, output)))
    (tmp_path / "wine.npz").write_bytes(b"")
    draft = ExerciseDraft(
        name='Wine\x7f "classes"\n[data]', solution="s.ipynb", handout="h.ipynb", calibration="c.json",
        source=DataSource(file=tmp_path / "wine.npz"), data_sha256="ef" * 32, image_shape=(4,), classes=3,
        train_samples=142, test_samples=36, margin=0.1, task="classification", flatten=False,
        center=(13.0, 2.3, 0.0, 19.5), scale=(0.8, 1.1, 1.0, 3.3), pad=0, channel_axis=False,
        preparation="(x - center) / spread per feature of 4", models=(draft_model(model),),
        review=("a note\nthat Keras wrote on\x1b two lines",), validation_split=0.2, first_class=1,
    )  # fmt: skip
    (tmp_path / "wine.toml").write_text(render_spec(draft))
    spec = load_spec(tmp_path / "wine.toml")
    assert spec.name == draft.name
    assert spec.data.center == (13.0, 2.3, 0.0, 19.5) and spec.data.scale == (0.8, 1.1, 1.0, 3.3)
    assert (spec.data.validation_split, spec.data.first_class) == (0.2, 1)
    assert spec.models[0].losses == ("categorical_crossentropy", "sparse_categorical_crossentropy")
    rows = np.array([[13.8, 2.3, 5.0, 23.1]])
    assert np.allclose(spec.data.preprocessing.apply(rows), [[1.0, 0.0, 5.0, 1.090909]])
