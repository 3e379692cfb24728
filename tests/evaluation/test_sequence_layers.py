"""Sequence, text and augmentation layers (Conv1D and its pooling, Embedding, SimpleRNN, LSTM,
GRU, Bidirectional, LayerNormalization, RandomFlip/Rotation/Zoom/Translation): read from the config of a
real Keras model, counted weight by weight as Keras counts them, within the evaluator's
allowlist, rebuilt by Keras from that config and built again from the grader's own form."""

from __future__ import annotations

import pytest

from grader.errors import UntrustedDataError
from grader.evaluation.limits import RebuildBounds
from grader.evaluation.model_config import check_rebuildable, parse_model_config
from grader.spec.layers import KINDS, Layer
from tests.conftest import exported

keras = pytest.importorskip("keras", reason="needs Keras (the default test environment has it)")
BOUNDS = RebuildBounds(input_values=4096)


def text_model():
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((40,)),
            layers.Embedding(500, 16),
            layers.Conv1D(8, 5, activation="relu", padding="same"),
            layers.MaxPooling1D(2),
            layers.LSTM(12, return_sequences=True),
            layers.GRU(10, return_sequences=True),
            layers.GRU(6, return_sequences=True, reset_after=False),
            layers.SimpleRNN(7, return_sequences=True),
            layers.AveragePooling1D(2, strides=1),
            layers.GlobalMaxPooling1D(),
            layers.LayerNormalization(),
            layers.Dense(1, activation="sigmoid"),
        ]
    )


def bidirectional_model():
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((30,)),
            layers.Embedding(200, 8),
            layers.Bidirectional(layers.LSTM(6, return_sequences=True)),
            layers.Bidirectional(layers.GRU(5), merge_mode="sum"),
            layers.Dense(4, activation="softmax"),
        ]
    )


def augmented_model():
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.1),
            layers.RandomZoom(0.2),
            layers.RandomTranslation(0.1, (-0.2, 0.1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(10, activation="softmax"),
        ]
    )


@pytest.mark.parametrize("build", [text_model, bidirectional_model, augmented_model])
def test_weights_are_counted_as_keras_counts_them_and_the_model_rebuilds_both_ways(build):
    from grader.evaluation.rebuild import build_model, model_from_config

    model = build()
    config = exported(model)
    architecture = check_rebuildable(config, BOUNDS)
    assert architecture == parse_model_config(config)
    assert architecture.param_count() == model.count_params()
    assert architecture.weight_shapes() == [tuple(weight.shape) for weight in model.get_weights()]
    rebuilt = model_from_config(config, BOUNDS)
    assert rebuilt.count_params() == model.count_params()
    again = build_model(architecture)  # from the grader's own form, as a spec's reference model is
    assert [type(layer).__name__ for layer in again.layers] == [type(layer).__name__ for layer in model.layers]
    assert again.count_params() == model.count_params()
    assert parse_model_config(exported(again)) == architecture


def test_the_grader_describes_and_compares_them_in_a_specs_terms():
    architecture = parse_model_config(exported(text_model()))
    described = [layer.describe() for layer in architecture.layers]
    assert described[:4] == [
        "Embedding(500, 16)", "Conv1D(8, 5, relu, padding same)", "MaxPooling1D(2)",
        "LSTM(12, tanh, sequences)",
    ]  # fmt: skip
    spec_lstm = Layer.from_dict({"type": "LSTM", "units": 12, "return_sequences": True})
    assert spec_lstm.matches(architecture.layers[3]) and not spec_lstm.matches(architecture.layers[4])
    gru = Layer.from_dict({"type": "GRU", "units": 10, "return_sequences": True})
    assert gru.reset_after and gru.matches(architecture.layers[4]) and not gru.matches(architecture.layers[5])
    augmented = parse_model_config(exported(augmented_model()))
    assert [layer.factors for layer in augmented.layers[1:4]] == [(-0.1, 0.1), (-0.2, 0.2), (-0.1, 0.1, -0.2, 0.1)]


def test_a_bidirectional_layer_is_its_recurrent_layer_both_ways_and_compared_so():
    architecture = parse_model_config(exported(bidirectional_model()))
    both_ways = architecture.layers[1:3]
    assert [layer.describe() for layer in both_ways] == [
        "Bidirectional(LSTM(6, tanh, sequences), concat)", "Bidirectional(GRU(5, tanh), sum)",
    ]  # fmt: skip
    spec = Layer.from_dict({"type": "Bidirectional", "wrapped": "LSTM", "units": 6, "return_sequences": True})
    assert spec.matches(both_ways[0]) and not spec.matches(both_ways[1])
    summed = Layer.from_dict({"type": "Bidirectional", "wrapped": "GRU", "units": 5, "merge_mode": "sum"})
    assert summed.reset_after and summed.matches(both_ways[1])


def test_a_bidirectional_layer_with_a_backward_layer_of_its_own_is_refused():
    layers = keras.layers
    forward, backward = layers.LSTM(6), layers.LSTM(7, go_backwards=True)
    model = keras.Sequential([keras.Input((30, 4)), layers.Bidirectional(forward, backward_layer=backward)])
    with pytest.raises(UntrustedDataError, match="backward layer is not its forward one run backwards"):
        check_rebuildable(exported(model), BOUNDS)
    config = exported(keras.Sequential([keras.Input((30, 4)), layers.Bidirectional(layers.LSTM(6))]))
    config["layers"][1]["config"]["layer"]["class_name"] = "Dense"
    with pytest.raises(UntrustedDataError, match="Dense layer, which the grader does not rebuild"):
        check_rebuildable(config, BOUNDS)


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("LSTM", {"units": 4, "stateful": True}, "stateful"),
        ("GRU", {"units": 4, "go_backwards": True}, "go_backwards"),
        ("Embedding", {"input_dim": 10, "output_dim": 4, "mask_zero": True}, "no mask"),
        ("Conv1D", {"filters": 4, "kernel_size": [3, 3]}, "kernel_size"),
        ("RandomFlip", {"mode": "diagonal"}, "mode"),
        ("RandomRotation", {"factor": "a lot"}, "factor"),
        ("LayerNormalization", {"axis": [1]}, "last axis"),
    ],
)
def test_odd_configs_of_them_are_refused_saying_what(kind, config, message):
    with pytest.raises(UntrustedDataError, match=message):
        KINDS[kind].read(config)


def test_an_embedding_too_large_for_the_bounds_is_refused_before_keras_builds_it():
    model = keras.Sequential([keras.Input((10,)), keras.layers.Embedding(10, 4)])
    config = exported(model)
    config["layers"][1]["config"]["input_dim"] = 1_000_000
    config["layers"][1]["config"]["output_dim"] = 1_000
    with pytest.raises(UntrustedDataError, match="weights; the grader rebuilds at most"):
        check_rebuildable(config, BOUNDS)
