import copy

import pytest

from grader.errors import UntrustedDataError
from grader.evaluation.limits import RebuildBounds
from grader.evaluation.model_config import check_rebuildable, parse_model_config
from grader.spec.architecture import Architecture
from grader.spec.layers import Layer
from tests.conftest import keras_config


def assert_is_the_spec_model(parsed: Architecture, expected, params: int) -> None:
    assert parsed.input_shape == (784,)
    assert all(a.matches(b) for a, b in zip(parsed.layers, expected.layers, strict=True))
    assert parsed.param_count() == params


def test_sequential_add_with_input_shape(spec):
    parsed = parse_model_config(keras_config("model_1_sequential_add"))
    assert parsed.input_shape == (784,)
    assert [layer.describe() for layer in parsed.layers] == [
        "Dense(64, relu)",
        "Dropout(0.2)",
        "Dense(64, relu)",
        "Dropout(0.2)",
        "Dense(10, softmax)",
    ]
    assert_is_the_spec_model(parsed, spec.model("model_1"), 55_050)


def test_functional_chain_matches_the_spec(spec):
    parsed = parse_model_config(keras_config("model_2_functional"))
    assert_is_the_spec_model(parsed, spec.model("model_2"), 437_310)


def test_activation_layers_fold_into_the_dense_before_them(spec):
    parsed = parse_model_config(keras_config("model_3_activation_layers"))
    assert [layer.describe() for layer in parsed.layers] == [
        "Dense(64, relu, L2=0.0001)",
        "Dropout(0.5)",
        "Dense(16, relu, L2=0.0001)",
        "Dense(10, softmax)",
    ]
    assert_is_the_spec_model(parsed, spec.model("model_3"), 51_450)


def test_flatten_is_kept_for_rebuilding_but_not_compared():
    parsed = parse_model_config(keras_config("flatten_input"))
    assert parsed.input_shape == (28, 28)
    assert parsed.layers[0].type == "Flatten"
    assert [layer.type for layer in parsed.compared_layers()] == ["Dense", "Dense"]
    assert parsed.weight_shapes() == [(784, 64), (64,), (64, 10), (10,)]


def test_a_model_without_input_shape_has_no_param_count():
    parsed = parse_model_config(keras_config("no_input_shape"))
    assert parsed.input_shape is None
    assert parsed.param_count() is None


def test_a_branching_functional_model_is_read_with_where_each_layer_takes_its_inputs():
    parsed = parse_model_config(keras_config("branching_functional"))
    assert [(layer.type, layer.inputs) for layer in parsed.layers] == [
        ("Dense", None), ("Dense", (-1,)), ("Concatenate", (0, 1)), ("Dense", None),
    ]  # fmt: skip
    assert parsed.layers[1].describe().endswith("of the input")
    assert parsed.layers[2].describe() == "Concatenate of layer 1, layer 2"
    assert parsed.param_count() == 2 * (784 * 8 + 8) + (16 * 10 + 10)  # the concatenation is 8 + 8 wide


def test_unsupported_layers_are_named_not_deserialised():
    parsed = parse_model_config(keras_config("unsupported_layer"))
    assert [layer.type for layer in parsed.layers] == ["Dense", "BatchNormalization", "Dense"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "no list of layers"),
        ({"layers": [{"config": {}}]}, "no class_name"),
        ({"layers": [{"class_name": "Dense", "config": {"units": -3}}]}, "invalid units"),
        ({"layers": [{"class_name": "Dropout", "config": {"rate": 2}}]}, "invalid rate"),
        ({"layers": [{"class_name": "Dense", "config": {"units": 4, "kernel_regularizer": {"x": 1}}}]}, "regularizer"),
        ({"layers": [{"class_name": "Dense", "config": {}}] * 500}, "at most 200"),
    ],
)
def test_malformed_configs_raise_a_clear_error(config, message):
    with pytest.raises(UntrustedDataError, match=message):
        parse_model_config(config)


def test_keras2_style_input_shape_on_the_first_layer():
    config = {
        "layers": [
            {
                "class_name": "Dense",
                "config": {
                    "units": 10,
                    "batch_input_shape": [None, 784],
                    "activation": "softmax",
                    "kernel_regularizer": "l2",
                },
            }
        ]
    }
    parsed = parse_model_config(config)
    assert parsed.input_shape == (784,)
    assert parsed.layers[0] == Layer("Dense", units=10, activation="softmax", l2=0.01)


def test_architecture_round_trips_through_a_dict():
    parsed = parse_model_config(keras_config("model_3_activation_layers"))
    assert Architecture.from_dict(parsed.to_dict()) == parsed


@pytest.mark.parametrize(
    "name", ["model_1_sequential_add", "model_2_functional", "model_3_activation_layers", "normalization_adapted"]
)
def test_configs_of_allowed_layers_may_be_rebuilt(name):
    assert check_rebuildable(keras_config(name), BOUNDS) == parse_model_config(keras_config(name))


def poisoned(change) -> dict:
    config = copy.deepcopy(keras_config("model_1_sequential_add"))
    change(config)
    return config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            poisoned(lambda c: c["layers"].insert(1, {"module": "keras.layers", "class_name": "Lambda", "config": {}})),
            "a Lambda layer, which the grader does not rebuild",
        ),
        (poisoned(lambda c: c["layers"][1].update(module="os")), "a Dense layer, which the grader does not rebuild"),
        (
            poisoned(
                lambda c: c["layers"][1]["config"].update(
                    kernel_initializer={"module": "subprocess", "class_name": "Popen", "config": {}}
                )
            ),
            "a Popen object of subprocess",
        ),
        (
            poisoned(
                lambda c: c["layers"][1]["config"].update(
                    activation={"module": "keras.activations", "class_name": "function", "config": "exec"}
                )
            ),
            "unrecognised activation",
        ),
        (
            poisoned(lambda c: c["layers"][1]["config"].update(kernel_regularizer={"__lambda__": "AAAA"})),
            "serialised code",
        ),
        (poisoned(lambda c: c["layers"][1].update(registered_name="Custom>Dense")), "registered as Custom>Dense"),
    ],
)
def test_anything_outside_the_allowlist_keeps_a_model_from_being_rebuilt(config, message):
    with pytest.raises(UntrustedDataError, match=message):
        check_rebuildable(config, BOUNDS)


BOUNDS = RebuildBounds.for_images((28, 28), largest_model=437_310)
SMUGGLED_LAYER = {
    "module": "keras.layers",
    "class_name": "TFSMLayer",
    "config": {"filepath": "/tmp/saved", "call_endpoint": "serve"},
    "registered_name": None,
}
BIG_EMBEDDING = {
    "module": "keras.layers",
    "class_name": "Embedding",
    "config": {"input_dim": 262_144, "output_dim": 1024},
    "build_config": {"input_shape": [None, 784]},
}


def smuggled(into) -> dict:
    config = copy.deepcopy(keras_config("model_2_functional"))
    into(config["layers"][1]["inbound_nodes"][0])
    return config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        # what Keras deserialises besides a layer's config: its inbound nodes
        (smuggled(lambda node: node["kwargs"].update(layer=SMUGGLED_LAYER)), "a TFSMLayer object of keras.layers"),
        (smuggled(lambda node: node["args"].append(BIG_EMBEDDING)), "an? Embedding object of keras.layers"),
        (
            smuggled(lambda node: node["args"][0]["config"].update(shape=[None, 262_144, 1024])),
            "larger than the grader",
        ),
        # sizes bounded before Keras builds anything
        (poisoned(lambda c: c["layers"][1]["config"].update(units=2_000_000)), "units is 2000000, not a size"),
        (
            poisoned(lambda c: c["layers"][1]["config"].update(units=200_000)),
            "169,800,714 weights; the grader rebuilds at most 100,000,000",
        ),
        (poisoned(lambda c: c["layers"][0]["config"].update(batch_shape=[None, 28 * 28 * 5])), "larger than this"),
        (poisoned(lambda c: c["layers"][1].update(build_config={"input_shape": [None, -1]})), "is not a shape"),
    ],
)
def test_every_object_and_size_anywhere_in_the_config_is_checked_before_keras_builds(config, message):
    with pytest.raises(UntrustedDataError, match=message):
        check_rebuildable(config, BOUNDS)


def test_a_layer_that_is_not_keras_own_is_refused_when_the_architecture_is_read():
    """A class defined in the notebook, even one named Dense, has module null in Keras 3's config."""
    config = poisoned(lambda c: c["layers"][1].update(module=None))
    with pytest.raises(UntrustedDataError, match="a Dense layer that is not Keras' own"):
        parse_model_config(config)
    with pytest.raises(UntrustedDataError, match="registered as Custom>Dense"):
        parse_model_config(poisoned(lambda c: c["layers"][1].update(registered_name="Custom>Dense")))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(output_layers=["nowhere", 0, 0]), "outputs name 'nowhere', which is none of its layers"),
        (lambda c: c.update(input_layers=["dense_5", 0, 0]), "inputs are dense_5, not input_layer_1; only a model"),
        (lambda c: c.update(output_layers="dense_5"), "outputs are not a list of layers"),
    ],
)
def test_a_functional_model_whose_inputs_or_outputs_are_not_its_ends_is_refused(change, message):
    config = copy.deepcopy(keras_config("model_2_functional"))
    change(config)
    with pytest.raises(UntrustedDataError, match=message):
        parse_model_config(config)
