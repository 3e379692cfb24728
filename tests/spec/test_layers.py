"""The layer registry: each layer read from a Keras config, described, compared and counted
as model.summary() counts it."""

import pytest

from grader.errors import UntrustedDataError
from grader.spec.architecture import Architecture
from grader.spec.layers import KINDS, Layer
from tests.conftest import keras_config


def lenet() -> Architecture:
    return Architecture(
        (32, 32, 1),
        tuple(
            Layer.from_dict(entry)
            for entry in [
                {"type": "Conv2D", "filters": 6, "kernel_size": [5, 5], "activation": "relu"},
                {"type": "AveragePooling2D", "pool_size": [2, 2]},
                {"type": "Conv2D", "filters": 16, "kernel_size": [5, 5], "activation": "relu"},
                {"type": "MaxPooling2D"},
                {"type": "Flatten"},
                {"type": "Dense", "units": 120, "activation": "relu"},
                {"type": "BatchNormalization"},
                {"type": "Dense", "units": 10, "activation": "softmax"},
            ]
        ),
    )


def test_shapes_and_parameters_follow_the_layers_as_keras_counts_them():
    model = lenet()
    assert [row.output_text for row in model.summary()] == [
        "(None, 28, 28, 6)", "(None, 14, 14, 6)", "(None, 10, 10, 16)", "(None, 5, 5, 16)",
        "(None, 120)", "(None, 120)", "(None, 10)",
    ]  # fmt: skip
    assert [row.params for row in model.summary()] == [156, 0, 2416, 0, 48120, 480, 1210]
    assert model.param_count() == 52382
    assert model.weight_shapes()[:2] == [(5, 5, 1, 6), (6,)]


def test_defaults_are_filled_in_so_that_a_spec_and_a_config_compare_alike():
    spec_layer = Layer.from_dict({"type": "MaxPooling2D"})
    read = Layer(type="MaxPooling2D", **KINDS["MaxPooling2D"].read({"pool_size": [2, 2], "padding": "valid"}))
    assert spec_layer.matches(read) and spec_layer.describe() == "MaxPooling2D(2x2)"
    assert Layer.from_dict({"type": "Dense", "units": 4}).activation == "linear"
    conv = Layer(type="Conv2D", **KINDS["Conv2D"].read({"filters": 8, "kernel_size": 3, "strides": [2, 2]}))
    assert conv.describe() == "Conv2D(8, 3x3, linear, strides 2x2)"


def test_layers_that_do_not_fit_their_input_give_no_count():
    flat = Architecture((784,), (Layer.from_dict({"type": "Conv2D", "filters": 6, "kernel_size": [5, 5]}),))
    assert flat.param_count() is None and flat.summary()[0].output is None
    with pytest.raises(ValueError, match="Conv2D needs images"):
        flat.weight_shapes()


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("Conv2D", {"filters": 6, "kernel_size": [5, 5], "data_format": "channels_first"}, "channels_last"),
        ("Conv2D", {"filters": 6, "kernel_size": [5, 5], "dilation_rate": [2, 2]}, "dilated"),
        ("Dense", {"units": 10, "activation": "os.system"}, "unrecognised activation"),
        ("Dense", {"units": 10**9}, "invalid units"),
        ("Reshape", {"target_shape": "(28, 28)"}, "invalid target_shape"),
        ("Normalization", {"axis": [1]}, r"axis \[1\]; only the last axis \(axis=-1, Keras' default\) is graded"),
        ("Normalization", {"axis": None}, r"axis None; only the last axis \(axis=-1"),
        ("Normalization", {"invert": True}, r"invert=True; only invert=False \(Keras' default, which normalises\)"),
        ("Normalization", {"mean": [0.0] * 3, "variance": [1.0] * 2}, "a mean and a variance that do not match"),
        ("Normalization", {"mean": 0.0, "variance": None}, "a mean and a variance that do not match"),
        ("Normalization", {"mean": [0.0] * 70_000, "variance": [1.0] * 70_000}, "70,000 values; at most 65,536"),
        ("Normalization", {"mean": [0.0, 1.0], "variance": [1.0, -1.0]}, r"variance '\[1.0, -1.0\]'; a number or"),
        ("Normalization", {"mean": [[0.0, 1.0]], "variance": [[1.0, 1.0]]}, r"mean '\[\[0.0, 1.0\]\]'; a number or"),
    ],
)
def test_odd_configs_are_refused_saying_what(kind, config, message):
    with pytest.raises(UntrustedDataError, match=message):
        KINDS[kind].read(config)


def test_a_spec_naming_an_unknown_layer_is_told_what_is_known():
    with pytest.raises(ValueError, match=r"unknown layer type 'Lambda'; known: Activation, Add, AveragePooling1D, "):
        Layer.from_dict({"type": "Lambda"})


def normalization(config: dict) -> Layer:
    return Layer.from_dict({"type": "Normalization", **KINDS["Normalization"].read(config)})


def adapted_normalization_config() -> dict:
    """The config Keras 3.15 writes of a Normalization adapted on 100 rows of 30 features."""
    layers = keras_config("normalization_adapted")["layers"]
    (config,) = [entry["config"] for entry in layers if entry["class_name"] == "Normalization"]
    return config


def test_an_adapted_normalization_is_counted_as_keras_counts_it():
    """Keras 3.15 counts an adapted Normalization over 30 features as 61 parameters, all
    non-trainable: a mean and a variance per feature and a scalar count, in that order; the
    fixture's model (then Dense(8, relu), Dense(1, sigmoid)) as 318."""
    norm = normalization(adapted_normalization_config())
    dense = [
        Layer.from_dict({"type": "Dense", "units": units, "activation": name})
        for units, name in ((8, "relu"), (1, "sigmoid"))
    ]
    model = Architecture((30,), (norm, *dense))
    assert norm.statistics == "adapted" and norm.describe() == "Normalization(adapted)"
    assert model.weight_shapes()[:3] == [(30,), (30,), ()]
    assert [row.params for row in model.summary()] == [61, 248, 9] and model.param_count() == 318
    assert [row.output_text for row in model.summary()] == ["(None, 30)", "(None, 8)", "(None, 1)"]
    stated = Layer.from_dict({"type": "Normalization"})  # as a spec states it
    assert stated == norm and stated.matches(norm)
    assert Layer.from_dict(norm.to_dict()) == norm


def test_a_normalization_given_its_mean_and_variance_has_no_weights_and_compares_as_an_adapted_one():
    given = normalization({**adapted_normalization_config(), "mean": [0.5] * 30, "variance": [2.0] * 30})
    assert given.statistics == "given" and given.describe() == "Normalization(given mean and variance)"
    assert Architecture((30,), (given,)).param_count() == 0
    assert normalization({"mean": 0.5, "variance": 2.0}) == given  # one value for every feature
    assert given.matches(Layer.from_dict({"type": "Normalization"}))
    with pytest.raises(ValueError, match="statistics = 'adapt'; known: adapted, given"):
        Layer.from_dict({"type": "Normalization", "statistics": "adapt"})
