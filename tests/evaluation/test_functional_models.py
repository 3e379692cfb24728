"""Functional models that are not a chain (a residual block with Add, branches joined by
Concatenate): read from a real Keras model's config with where each layer takes its inputs,
counted as Keras counts them, rebuilt both ways, compared in a spec's terms; what cannot be
graded (two inputs, a layer leading nowhere, a cycle) refused saying why."""

from __future__ import annotations

import copy

import pytest

from grader.errors import UntrustedDataError
from grader.evaluation.limits import RebuildBounds
from grader.evaluation.model_config import check_rebuildable, parse_model_config
from grader.spec.architecture import Architecture
from grader.spec.layers import Layer
from tests.conftest import exported

keras = pytest.importorskip("keras", reason="needs Keras (the default test environment has it)")
BOUNDS = RebuildBounds(input_values=4096)


def residual_model():
    """A convolution, then a residual block around two more, then a classifier."""
    layers = keras.layers
    images = keras.Input((12, 12, 1))
    stem = layers.Conv2D(8, 3, padding="same", activation="relu")(images)
    inner = layers.Conv2D(8, 3, padding="same", activation="relu")(stem)
    inner = layers.Conv2D(8, 3, padding="same")(inner)
    joined = layers.Activation("relu")(layers.Add()([stem, inner]))
    pooled = layers.GlobalAveragePooling2D()(joined)
    return keras.Model(images, layers.Dense(10, activation="softmax")(pooled))


def two_branch_model():
    layers = keras.layers
    rows = keras.Input((20,))
    wide, narrow = layers.Dense(16, activation="relu")(rows), layers.Dense(4, activation="tanh")(rows)
    joined = layers.Concatenate()([wide, narrow])
    return keras.Model(rows, layers.Dense(1, activation="sigmoid")(layers.Dropout(0.2)(joined)))


@pytest.mark.parametrize("build", [residual_model, two_branch_model])
def test_a_graph_is_counted_as_keras_counts_it_and_rebuilds_both_ways(build):
    from grader.evaluation.rebuild import build_model, model_from_config

    model = build()
    config = exported(model)
    architecture = check_rebuildable(config, BOUNDS)
    assert not architecture.is_chain
    assert architecture.param_count() == model.count_params()
    assert architecture.weight_shapes() == [tuple(weight.shape) for weight in model.get_weights()]
    assert model_from_config(config, BOUNDS).count_params() == model.count_params()
    again = build_model(architecture)  # from the grader's own form, as a spec's reference model is
    assert again.count_params() == model.count_params()
    assert parse_model_config(exported(again)) == architecture


def test_a_residual_block_is_read_with_its_wiring_and_compared_with_it():
    architecture = parse_model_config(exported(residual_model()))
    assert [layer.describe() for layer in architecture.layers] == [
        "Conv2D(8, 3x3, relu, padding same)",
        "Conv2D(8, 3x3, relu, padding same)",
        "Conv2D(8, 3x3, linear, padding same)",
        "Add of layer 1, layer 3",
        "Activation(relu)",  # not folded: the Add before it has no activation of its own
        "GlobalAveragePooling2D()",
        "Dense(10, softmax)",
    ]
    spec_add = Layer.from_dict({"type": "Add", "inputs": [0, 2]})
    assert spec_add.matches(architecture.layers[3]) and not Layer("Add").matches(architecture.layers[3])
    without_skip = Architecture(architecture.input_shape, (*architecture.layers[:3], *architecture.layers[4:]))
    assert without_skip.is_chain and without_skip.param_count() == architecture.param_count()


def test_an_activation_is_folded_only_into_a_layer_whose_output_it_alone_takes():
    layers = keras.layers
    rows = keras.Input((6,))
    linear = layers.Dense(4)(rows)
    model = keras.Model(rows, layers.Add()([layers.Activation("relu")(linear), linear]))
    parsed = parse_model_config(exported(model))
    assert [(layer.type, layer.activation, layer.inputs) for layer in parsed.layers] == [
        ("Dense", "linear", None), ("Activation", "relu", None), ("Add", None, (0, 1)),
    ]  # fmt: skip


def test_models_that_are_not_one_input_to_one_output_are_refused_saying_why():
    layers = keras.layers
    first, second = keras.Input((4,)), keras.Input((4,))
    two_inputs = keras.Model([first, second], layers.Add()([layers.Dense(3)(first), layers.Dense(3)(second)]))
    with pytest.raises(UntrustedDataError, match="has 2 inputs; exactly one can be graded"):
        parse_model_config(exported(two_inputs))
    config = exported(two_branch_model())
    dangling = copy.deepcopy(config["layers"][1])
    dangling["name"] = "dangling"
    config["layers"].append(dangling)
    with pytest.raises(UntrustedDataError, match="layer 'dangling' of the Functional model leads to no output"):
        parse_model_config(config)
    cyclic = exported(two_branch_model())
    node = cyclic["layers"][1]["inbound_nodes"][0]["args"][0]["config"]
    node["keras_history"] = [cyclic["layers"][-1]["name"], 0, 0]
    with pytest.raises(UntrustedDataError, match="feed each other in a cycle"):
        parse_model_config(cyclic)


def test_a_spec_s_inputs_are_checked_and_the_layer_before_is_no_input_to_name():
    from grader.spec.architecture import with_inputs_checked

    stated = with_inputs_checked(
        (Layer("Dense", units=4), Layer.from_dict({"type": "Dense", "units": 4, "inputs": [0]}),
         Layer.from_dict({"type": "Add", "inputs": [1, -1]}))
    )  # fmt: skip
    assert [layer.inputs for layer in stated] == [None, None, (-1, 1)]
    for wrong in ([2], ["a"], []):
        with pytest.raises(ValueError, match="name layers before it by their position"):
            with_inputs_checked((Layer("Dense", units=4), Layer.from_dict({"type": "Add", "inputs": wrong})))


def test_a_spec_states_a_residual_model_with_inputs_and_counts_it():
    layers = (
        Layer.from_dict({"type": "Dense", "units": 8, "activation": "relu"}),
        Layer.from_dict({"type": "Dense", "units": 8}),
        Layer.from_dict({"type": "Add", "inputs": [0, 1]}),
        Layer.from_dict({"type": "Dense", "units": 2, "activation": "softmax"}),
    )
    assert Architecture((8,), layers).param_count() == 72 + 72 + 18
    with pytest.raises(ValueError, match="not from layers before it"):
        Architecture((8,), (Layer.from_dict({"type": "Add", "inputs": [0, 1]}),)).weight_shapes()


def test_one_model_is_read_one_way_whatever_order_keras_lists_it_in_or_its_sum_takes():
    layers = keras.layers

    def branches(swap: bool):
        rows = keras.Input((6,))
        first = layers.Activation("relu")(layers.Dense(5)(rows))  # an activation layer on a branch
        second = layers.Dense(5, activation="tanh")(layers.Dense(3, activation="relu")(rows))
        return keras.Model(rows, layers.Add()([second, first] if swap else [first, second]))

    one, other = exported(branches(False)), exported(branches(True))
    other["layers"] = [other["layers"][0], *reversed(other["layers"][1:])]  # listed in another order
    assert parse_model_config(one) == parse_model_config(other)
    assert [layer.describe() for layer in parse_model_config(one).layers] == [
        "Dense(5, relu)", "Dense(3, relu) of the input", "Dense(5, tanh)", "Add of layer 1, layer 3",
    ]  # fmt: skip


def test_a_shared_layer_a_huge_sum_and_two_layers_of_one_name_are_refused():
    layers = keras.layers
    rows = keras.Input((6,))
    shared = layers.Dense(6)
    with pytest.raises(UntrustedDataError, match="is called 2 times \\(a shared layer\\)"):
        parse_model_config(exported(keras.Model(rows, shared(shared(rows)))))
    config = exported(two_branch_model())
    concatenate = next(entry for entry in config["layers"] if entry["class_name"] == "Concatenate")
    concatenate["inbound_nodes"][0]["args"][0] *= 500
    with pytest.raises(UntrustedDataError, match="takes 1000 inputs; at most 16 are graded"):
        check_rebuildable(config, BOUNDS)
    twins = exported(two_branch_model())
    twins["layers"][2]["name"] = twins["layers"][1]["name"]
    with pytest.raises(UntrustedDataError, match="two layers of the Functional model are named"):
        parse_model_config(twins)


@pytest.mark.parametrize(
    "poison",
    [
        lambda entry: entry.update(build_config={"input_shape": [{"config": 3}, [None, 4]]}),
        lambda entry: entry.update(class_name=["Dense"]),
        lambda entry: entry["config"].update(kernel_initializer={"class_name": ["GlorotUniform"], "module": 3}),
    ],
)
def test_malformed_configs_are_refused_as_untrusted_data_not_a_crash(poison):
    config = exported(two_branch_model())
    poison(next(entry for entry in config["layers"] if entry["class_name"] in ("Concatenate", "Dense")))
    with pytest.raises(UntrustedDataError):
        check_rebuildable(config, BOUNDS)
