"""Read a student's model from the JSON of ``model.get_config()``, as untrusted data,
into the canonical layer list of ``grader.spec.architecture``. Pure Python: no TensorFlow.

Equivalent spellings collapse to one form: ``Dense(400)`` followed by
``Activation('relu')`` is ``Dense(400, relu)``; ``Sequential`` and the
Functional API give the same layers; ``InputLayer`` only sets the input shape. A Functional
model that is not a chain is read in one order, whatever order Keras lists its layers in:
walked back from its output, each branch whole (``_feeding_order``); an ``Add``'s inputs in
ascending order (addition does not care).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection
from typing import Any

from grader.errors import UntrustedDataError
from grader.evaluation.limits import RebuildBounds
from grader.spec.architecture import Architecture
from grader.spec.layers import ACTIVATION_LAYERS, COMMUTATIVE, KINDS, MAX_UNITS, RECURRENT, Layer, activation_name

MAX_LAYERS = 200
# The module Keras names in a config for its own layers
KERAS_LAYERS = "keras.layers"


def parse_model_config(config: Any) -> Architecture:
    """Turn the JSON of ``model.get_config()`` (Sequential or Functional) into the grader's
    form: its layers in order, each naming its inputs where it is not fed by the one before.

    Raises ``UntrustedDataError`` saying what was found when the config is malformed, holds
    an unsupported layer, or is not a model from one input to one output.
    """
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise UntrustedDataError("the model config has no list of layers")
    entries = config["layers"]
    if len(entries) > MAX_LAYERS:
        raise UntrustedDataError(f"the model has {len(entries)} layers; at most {MAX_LAYERS} are graded")
    for entry in entries:
        _check_keras_own(entry)
    sources: dict[str, list[str]] | None = None
    if "input_layers" in config:
        entries, sources = _functional_graph(entries, config)
    feeds = Counter(source for names in (sources or {}).values() for source in names)
    input_shape: tuple[int, ...] | None = None
    layers: list[Layer] = []
    # Where each Functional layer's output is among the canonical layers (-1: the model's input)
    position: dict[str, int] = {}
    for entry in entries:
        class_name, layer_config = _class_and_config(entry)
        name = str(entry.get("name"))
        if class_name == "InputLayer":
            input_shape = _shape_without_batch(layer_config.get("batch_shape") or layer_config.get("batch_input_shape"))
            position[name] = -1
            continue
        if input_shape is None and not layers:
            # Keras 2 configs put `input_shape=` on the first layer itself
            input_shape = _shape_without_batch(layer_config.get("batch_input_shape"))
        fed_by = (len(layers) - 1,) if sources is None else tuple(position[source] for source in sources[name])
        # An activation layer is its source's activation when it alone takes that layer's output.
        only_consumer = sources is None or (len(fed_by) == 1 and feeds[sources[name][0]] == 1)
        folded = _folded(class_name, layer_config, layers, fed_by) if only_consumer else None
        if folded is not None:
            layers[fed_by[0]] = folded
            position[name] = fed_by[0]
            continue
        inputs = None if fed_by == (len(layers) - 1,) else fed_by
        layers.append(_canonical_layer(class_name, layer_config, inputs))
        position[name] = len(layers) - 1
    return Architecture(input_shape=input_shape, layers=tuple(layers))


def _class_and_config(entry: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise UntrustedDataError("a layer entry in the model config has no class_name")
    layer_config = entry.get("config")
    if not isinstance(layer_config, dict):
        raise UntrustedDataError(f"the {entry['class_name']} layer has no config")
    return entry["class_name"], layer_config


def _check_keras_own(entry: Any) -> None:
    """Refuse a layer whose class is not Keras' own (a class the notebook defined, even one
    named ``Dense``): Keras 3 names its own layers' module ``keras.layers`` and registers
    them under their class name. A config without a module is Keras 2's, read as it is."""
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        return  # said by _class_and_config
    name = entry["class_name"][:60]
    if "module" in entry and entry["module"] != KERAS_LAYERS:
        whose = (
            "defined in the notebook"
            if entry["module"] in (None, "__main__")
            else f"of module {str(entry['module'])[:60]}"
        )
        raise UntrustedDataError(
            f"the model has a {name} layer that is not Keras' own (a class {whose}); build the model from keras.layers"
        )
    if entry.get("registered_name") not in (None, entry["class_name"]):
        raise UntrustedDataError(f"the {name} layer is registered as {str(entry['registered_name'])[:60]}")


def _endpoints(value: Any, what: str) -> list[str]:
    """The layer names a Functional config gives as its inputs or outputs: ``[name, 0, 0]`` or
    a list of those."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value[0]]
    if isinstance(value, list) and value and all(isinstance(item, list) for item in value):
        return [name for item in value for name in _endpoints(item, what)]
    raise UntrustedDataError(f"the Functional model's {what} are not a list of layers")


def _functional_graph(entries: list[Any], config: dict[str, Any]) -> tuple[list[Any], dict[str, list[str]]]:
    """Check that a Functional model runs from one input to one output, every layer it names
    among its layers, each called once and leading to the output; return its layers in the
    grader's order (``_feeding_order``) and the names of the layers feeding each, in order."""
    by_name: dict[str, Any] = {}
    sources: dict[str, list[str]] = {}
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise UntrustedDataError("a layer of the Functional model has no name")
        if name in by_name:
            raise UntrustedDataError(f"two layers of the Functional model are named {name[:60]!r}")
        nodes = entry.get("inbound_nodes", [])
        if isinstance(nodes, list) and len(nodes) > 1:
            raise UntrustedDataError(f"layer {name[:60]!r} is called {len(nodes)} times (a shared layer): not graded")
        by_name[name] = entry
        sources[name] = _inbound_layer_names(nodes)
        if len(sources[name]) > MAX_MERGED_INPUTS:
            raise UntrustedDataError(
                f"layer {name[:60]!r} takes {len(sources[name])} inputs; at most {MAX_MERGED_INPUTS} are graded"
            )
    unknown = [source for names in sources.values() for source in names if source not in by_name]
    if unknown:
        raise UntrustedDataError(f"a layer of the Functional model takes {unknown[0][:60]!r}, none of its layers")
    roots = [name for name, names in sources.items() if not names]
    if len(roots) != 1:
        raise UntrustedDataError(f"the Functional model has {len(roots)} inputs; exactly one can be graded")
    outputs = _endpoints(config.get("output_layers"), "outputs")
    for what, names, end in (
        ("inputs", _endpoints(config.get("input_layers"), "inputs"), roots[0]),
        ("outputs", outputs, None),
    ):
        missing = [name for name in names if name not in by_name]
        if missing:
            raise UntrustedDataError(
                f"the Functional model's {what} name {missing[0][:60]!r}, which is none of its layers"
            )
        if len(names) != 1 or (end is not None and names != [end]):
            raise UntrustedDataError(
                f"the Functional model's {what} are {', '.join(name[:60] for name in names)}"
                f"{f', not {end[:60]}' if end is not None else ''}; "
                "only a model from one input to one output, every layer leading to it, can be graded"
            )
    order = _feeding_order(outputs[0], sources, by_name)
    if len(order) != len(by_name):
        idle = [name for name in by_name if name not in set(order)]
        raise UntrustedDataError(
            f"layer {idle[0][:60]!r} of the Functional model leads to no output; "
            "only a model from one input to one output, every layer leading to it, can be graded"
        )
    return [by_name[name] for name in order], sources


def _feeding_order(output: str, sources: dict[str, list[str]], entries: dict[str, Any]) -> list[str]:
    """The layers that lead to ``output``, each after the layers feeding it: walked back from
    the output, a layer's inputs in their order (an ``Add``'s in the order of what feeds them,
    as addition does not care), each branch whole before the next: the order in which a model
    is written branch by branch, whatever order Keras lists it in. ``UntrustedDataError`` for
    a cycle."""
    order: list[str] = []
    done: set[str] = set()
    # An explicit stack: a chain of MAX_LAYERS layers must not reach Python's recursion limit.
    stack: list[tuple[str, int]] = [(output, 0)]
    on_path = {output}
    signatures: dict[str, str] = {}
    while stack:
        name, next_input = stack[-1]
        inputs = sources[name]
        if entries[name].get("class_name") in COMMUTATIVE:
            inputs = sorted(inputs, key=lambda source: _signature(source, sources, entries, signatures))
        if next_input < len(inputs):
            stack[-1] = (name, next_input + 1)
            source = inputs[next_input]
            if source in on_path:
                raise UntrustedDataError("the Functional model's layers feed each other in a cycle")
            if source not in done:
                stack.append((source, 0))
                on_path.add(source)
            continue
        stack.pop()
        on_path.discard(name)
        done.add(name)
        order.append(name)
    return order


def _signature(name: str, sources: dict[str, list[str]], entries: dict[str, Any], known: dict[str, str]) -> str:
    """What a layer and everything feeding it are, without their names: equal for two
    branches built alike. Iterative, and each layer's computed once (a graph may share many)."""
    pending = [name]
    while pending:
        current = pending[-1]
        if current in known:
            pending.pop()
            continue
        unknown = [source for source in sources[current] if source not in known and source not in pending]
        if unknown:
            pending.extend(unknown)
            continue
        entry = entries[current]
        config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        own = json.dumps([entry.get("class_name"), {key: value for key, value in config.items() if key != "name"}],
                         sort_keys=True, default=str)  # fmt: skip
        known[current] = own + "(" + ",".join(known.get(source, "?") for source in sources[current]) + ")"
        pending.pop()
    return known[name]


def _inbound_layer_names(nodes: Any) -> list[str]:
    """Names of the layers feeding a Functional layer (Keras 3 and Keras 2 node formats)."""
    names: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            history = value.get("config", {}).get("keras_history") if isinstance(value.get("config"), dict) else None
            if isinstance(history, list) and history and isinstance(history[0], str):
                names.append(history[0])
                return
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            # Keras 2: [[["dense", 0, 0, {}]]]
            if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
                names.append(value[0])
                return
            for item in value:
                visit(item)

    visit(nodes)
    return names


def _shape_without_batch(shape: Any) -> tuple[int, ...] | None:
    if not isinstance(shape, list) or len(shape) < 2:
        return None
    dims = shape[1:]
    if not all(isinstance(dim, int) and 0 < dim <= MAX_UNITS for dim in dims):
        return None
    return tuple(dims)


def _folded(class_name: str, config: dict[str, Any], layers: list[Layer], fed_by: tuple[int, ...]) -> Layer | None:
    """An activation layer taking a linear Dense, Conv2D or Conv1D alone, as that layer with
    the activation (``Dense(400)`` then ``Activation('relu')`` is ``Dense(400, relu)``)."""
    if class_name not in ("Activation", *ACTIVATION_LAYERS) or len(fed_by) != 1 or fed_by[0] < 0:
        return None
    source = layers[fed_by[0]]
    if source.type not in ("Dense", "Conv2D", "Conv1D") or source.activation != "linear":
        return None
    return Layer(**{**source.__dict__, "activation": _activation_of(class_name, config)})


def _activation_of(class_name: str, config: dict[str, Any]) -> str:
    return ACTIVATION_LAYERS.get(class_name) or activation_name(config.get("activation"))


def _canonical_layer(class_name: str, config: dict[str, Any], inputs: tuple[int, ...] | None) -> Layer:
    """The canonical form of one Keras layer, fed by ``inputs`` (None: the layer before it)."""
    if class_name in ("Activation", *ACTIVATION_LAYERS):
        return Layer(type="Activation", activation=_activation_of(class_name, config), inputs=inputs)
    if class_name not in KINDS:
        raise UntrustedDataError(
            f"the model has a {class_name[:60]} layer, which the grader does not grade; "
            f"it grades {', '.join(sorted(KINDS))}"
        )
    return Layer.from_dict({"type": class_name, "inputs": inputs, **KINDS[class_name].read(config)})


# Keras objects a layer's config may hold besides plain values, by module. Anything else (a
# Lambda, a custom class, a module to import) keeps a model from being rebuilt at all.
NESTED_OBJECTS = {
    "keras": {"DTypePolicy", "FloatDTypePolicy"},
    "keras.initializers": {
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "LecunNormal",
        "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal",
        "VarianceScaling", "Zeros",
    },
    "keras.regularizers": {"L1", "L2", "L1L2", "OrthogonalRegularizer"},
    "keras.constraints": {"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"},
    "keras.activations": {"function"},
}  # fmt: skip
# Plain data Keras writes into a config under a class name of its own, with no module: a
# tensor between two layers (a Functional model's inbound nodes), a tuple.
DATA_MARKERS = {"__keras_tensor__", "__tuple__"}
REBUILDABLE_LAYERS = {*KINDS, "InputLayer", *ACTIVATION_LAYERS}
MAX_CONFIG_DEPTH = 12
MAX_MERGED_INPUTS = 16
# Keys whose values are a shape, and the keys of the model's input among them
SHAPE_KEYS = {"batch_shape", "batch_input_shape", "input_shape", "build_input_shape", "shape", "target_shape"}
INPUT_SHAPE_KEYS = {"batch_shape", "batch_input_shape", "build_input_shape"}
# A layer's build config: the shape it was built on, batch axis first. An adapted Normalization
# was built on the rows it adapted to (all the training rows): that axis is not one example's.
BUILD_SHAPE_KEY = "input_shape"
MAX_BUILD_ROWS = 2**31 - 1
# Keys whose values are sizes (an int or one per axis)
SIZE_KEYS = {"units", "filters", "input_dim", "output_dim", "kernel_size", "pool_size", "strides", "dilation_rate",
             "size", "depth_multiplier"}  # fmt: skip
# Values of one tensor between layers, per example: past this a prediction of 1,000 images
# would need gigabytes.
MAX_TENSOR_VALUES = 2**22


def check_rebuildable(config: Any, bounds: RebuildBounds) -> Architecture:
    """Raise ``UntrustedDataError`` unless Keras may rebuild ``config`` (``model.get_config()``
    of a Sequential or Functional model) within ``bounds``: every layer of the registry, every
    object anywhere in it (a layer's config, its build config, a Functional model's inbound
    nodes) a known Keras class of a Keras module or plain data, every activation a known
    function, every size and shape bounded, the weights in all within bounds; nothing else.
    Returns the model as the grader reads it."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise UntrustedDataError("the model config has no list of layers")
    if len(config["layers"]) > MAX_LAYERS:
        raise UntrustedDataError(f"the model has {len(config['layers'])} layers; at most {MAX_LAYERS} are graded")
    for entry in config["layers"]:
        _check_layer_entry(entry, REBUILDABLE_LAYERS, bounds)
    _check_values({key: value for key, value in config.items() if key != "layers"}, 0, bounds)
    architecture = parse_model_config(config)
    weights = architecture.param_count()
    if weights is None:
        raise UntrustedDataError("the model has no input shape, so it cannot be rebuilt")
    if weights > bounds.weights:
        raise UntrustedDataError(f"the model has {weights:,} weights; the grader rebuilds at most {bounds.weights:,}")
    assert architecture.input_shape is not None  # else it had no weights
    if math.prod(architecture.input_shape) > bounds.input_values:
        raise UntrustedDataError(
            f"the model's input holds {math.prod(architecture.input_shape):,} values; this exercise's images are "
            f"prepared into at most {bounds.input_values:,}"
        )
    return architecture


# The layers a wrapper holds in its config, under these keys: Bidirectional's recurrent layers
WRAPPED_LAYERS = {"Bidirectional": ("layer", "backward_layer")}


def _check_layer_entry(entry: Any, allowed: Collection[str], bounds: RebuildBounds) -> None:
    """A layer of the model (or one a wrapper holds): a Keras class of ``allowed``, its values
    within bounds; a wrapper's own layers checked as layers, of the recurrent kinds only."""
    class_name, layer_config = _class_and_config(entry)
    if class_name not in allowed or entry.get("module") != KERAS_LAYERS:
        raise UntrustedDataError(f"the model has a {class_name[:60]} layer, which the grader does not rebuild")
    if entry.get("registered_name") not in (None, class_name):
        raise UntrustedDataError(f"the {class_name} layer is registered as {str(entry['registered_name'])[:60]}")
    held = WRAPPED_LAYERS.get(class_name, ())
    for key in held:
        if layer_config.get(key) is not None:
            _check_layer_entry(layer_config[key], RECURRENT, bounds)
    own = {key: value for key, value in layer_config.items() if key not in held}
    _check_values(
        {key: value for key, value in entry.items() if key not in ("module", "class_name", "config")}, 0, bounds
    )
    _check_values(own, 1, bounds)


def _check_values(value: Any, depth: int, bounds: RebuildBounds) -> None:
    if depth > MAX_CONFIG_DEPTH:
        raise UntrustedDataError("the model config is nested too deeply")
    if isinstance(value, list):
        for item in value:
            _check_values(item, depth + 1, bounds)
        return
    if not isinstance(value, dict):
        return
    if any(not isinstance(key, str) or key.startswith("__") for key in value):
        raise UntrustedDataError("the model config holds serialised code")
    if "class_name" in value:
        _check_object(value)
    for key, item in value.items():
        if key == "activation" and isinstance(item, str):
            activation_name(item)
        elif key in SHAPE_KEYS and item is not None:
            _check_shape(key, item, bounds)
        elif key in SIZE_KEYS and item is not None:
            _check_sizes(key, item)
        _check_values(item, depth + 1, bounds)


def _check_object(value: dict[str, Any]) -> None:
    """An object the config names by its class: plain data, or a known Keras class of its module."""
    module, class_name = value.get("module"), value.get("class_name")
    if not isinstance(class_name, str):
        raise UntrustedDataError("the model config names an object's class by something other than a name")
    if class_name in DATA_MARKERS and module is None:
        return
    if (
        class_name in REBUILDABLE_LAYERS
        or not isinstance(module, str)
        or class_name not in NESTED_OBJECTS.get(module, ())
    ):
        raise UntrustedDataError(f"the model config holds a {str(class_name)[:60]} object of {str(module)[:60]}")
    if class_name == "function":
        activation_name(value)  # a known activation, or refused
    elif value.get("registered_name") not in (None, class_name):
        raise UntrustedDataError(f"the model config registers {str(value['registered_name'])[:60]}")


def _check_shape(key: str, shape: Any, bounds: RebuildBounds) -> None:
    if isinstance(shape, dict):  # a tuple, as Keras writes it
        config = shape.get("config")
        dims = config.get("value") if isinstance(config, dict) else None
    else:
        dims = shape
    if isinstance(dims, list) and dims and all(isinstance(each, list | dict) for each in dims):
        # a merging layer's inputs: a shape each
        if len(dims) > MAX_MERGED_INPUTS:
            raise UntrustedDataError(f"the model config's {key} names {len(dims)} inputs; at most {MAX_MERGED_INPUTS}")
        for each in dims:
            _check_shape(key, each, bounds)
        return
    if not isinstance(dims, list) or not all(dim is None or (isinstance(dim, int) and dim >= 0) for dim in dims):
        raise UntrustedDataError(f"the model config's {key} is not a shape")
    # One example's axes: a build config's rows are bounded as rows
    example = [None, *dims[1:]] if key == BUILD_SHAPE_KEY and dims else dims
    values = math.prod(dim for dim in example if dim is not None)
    if (
        any(dim is not None and dim > MAX_UNITS for dim in example)
        or values > MAX_TENSOR_VALUES
        or (dims and dims[0] is not None and dims[0] > MAX_BUILD_ROWS)
    ):
        raise UntrustedDataError(f"the model config's {key} {_shown(dims)} is larger than the grader rebuilds")
    if key in INPUT_SHAPE_KEYS and math.prod(dim for dim in dims[1:] if dim is not None) > bounds.input_values:
        raise UntrustedDataError(
            f"the model config's {key} {_shown(dims)} is larger than this exercise's prepared images"
        )


def _check_sizes(key: str, sizes: Any) -> None:
    items = sizes if isinstance(sizes, list) else [sizes]
    if not all(isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= MAX_UNITS for item in items):
        raise UntrustedDataError(f"the model config's {key} is {_shown(sizes)}, not a size up to {MAX_UNITS:,}")


def _shown(value: Any) -> str:
    return str(value)[:60]
