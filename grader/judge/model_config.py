"""Read a student's model from the JSON of ``model.get_config()``, as untrusted data,
into the canonical layer list of ``grader.spec.architecture``. Pure Python: no TensorFlow.

Equivalent spellings collapse to one form: ``Dense(400)`` followed by
``Activation('relu')`` is ``Dense(400, relu)``; ``Sequential`` and the
Functional API give the same chain; ``InputLayer`` only sets the input shape.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from grader.errors import UntrustedDataError
from grader.spec.architecture import Architecture
from grader.spec.layers import ACTIVATION_LAYERS, KINDS, MAX_UNITS, RECURRENT, Layer, activation_name

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
        inputs = None
        if sources is not None:
            fed_by = tuple(position[source] for source in sources[name])
            inputs = None if fed_by == (len(layers) - 1,) else fed_by
        # An activation layer is folded into the layer before it only when it alone takes its output.
        foldable = inputs is None and (sources is None or all(feeds[source] == 1 for source in sources[name]))
        layers.extend(_canonical_layers(class_name, layer_config, layers, inputs, foldable))
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
    among its layers and each leading to the output; return its layers in an order where each
    comes after those feeding it, and the names of the layers feeding each (in order)."""
    by_name: dict[str, Any] = {}
    sources: dict[str, list[str]] = {}
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise UntrustedDataError("a layer of the Functional model has no name")
        by_name[name] = entry
        sources[name] = _inbound_layer_names(entry.get("inbound_nodes", []))
    unknown = [source for names in sources.values() for source in names if source not in by_name]
    if unknown:
        raise UntrustedDataError(
            f"a layer of the Functional model takes {unknown[0][:60]!r}, which is none of its layers"
        )
    roots = [name for name, names in sources.items() if not names]
    if len(roots) != 1:
        raise UntrustedDataError(f"the Functional model has {len(roots)} inputs; exactly one can be graded")
    order = _feeding_order(sources)
    output = order[-1]
    for what, key, end in (("inputs", "input_layers", roots[0]), ("outputs", "output_layers", output)):
        names = _endpoints(config.get(key), what)
        missing = [name for name in names if name not in by_name]
        if missing:
            raise UntrustedDataError(
                f"the Functional model's {what} name {missing[0][:60]!r}, which is none of its layers"
            )
        if names != [end]:
            raise UntrustedDataError(
                f"the Functional model's {what} are {', '.join(name[:60] for name in names)}, not {end[:60]}; "
                "only a model from one input to one output, every layer leading to it, can be graded"
            )
    return [by_name[name] for name in order], sources


def _feeding_order(sources: dict[str, list[str]]) -> list[str]:
    """The layers, each after the layers feeding it (in the config's order where that is free);
    ``UntrustedDataError`` for a cycle, or a layer that leads to no output (two ends)."""
    waiting = {name: len(set(names)) for name, names in sources.items()}
    consumers: dict[str, list[str]] = {name: [] for name in sources}
    for name, names in sources.items():
        for source in set(names):
            consumers[source].append(name)
    order = [name for name, count in waiting.items() if count == 0]
    for name in order:  # grows as layers become ready
        for consumer in consumers[name]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                order.append(consumer)
    if len(order) != len(sources):
        raise UntrustedDataError("the Functional model's layers feed each other in a cycle")
    ends = [name for name in order if not consumers[name]]
    if len(ends) != 1:
        raise UntrustedDataError(
            f"the Functional model has {len(ends)} layers that feed no other "
            f"({', '.join(end[:60] for end in ends[:3])}); only a model from one input to one output can be graded"
        )
    order.remove(ends[0])
    return [*order, ends[0]]


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


def _canonical_layers(
    class_name: str, config: dict[str, Any], previous: list[Layer], inputs: tuple[int, ...] | None, foldable: bool
) -> list[Layer]:
    """The canonical form of one Keras layer, fed by ``inputs``; may amend the previous layer
    (an activation layer after a linear Dense or Conv2D is that layer's activation, when it
    alone takes that layer's output: ``foldable``)."""
    if class_name in ("Activation", *ACTIVATION_LAYERS):
        name = ACTIVATION_LAYERS.get(class_name) or activation_name(config.get("activation"))
        linear = previous and previous[-1].type in ("Dense", "Conv2D", "Conv1D") and previous[-1].activation == "linear"
        if foldable and linear:
            previous[-1] = Layer(**{**previous[-1].__dict__, "activation": name})
            return []
        return [Layer(type="Activation", activation=name, inputs=inputs)]
    if class_name not in KINDS:
        raise UntrustedDataError(
            f"the model has a {class_name[:60]} layer, which the grader does not grade; "
            f"it grades {', '.join(sorted(KINDS))}"
        )
    return [Layer(type=class_name, inputs=inputs, **KINDS[class_name].read(config))]


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
# Keys whose values are sizes (an int or one per axis)
SIZE_KEYS = {"units", "filters", "input_dim", "output_dim", "kernel_size", "pool_size", "strides", "dilation_rate",
             "size", "depth_multiplier"}  # fmt: skip
# Values of one tensor between layers, per example: past this a prediction of 1,000 images
# would need gigabytes.
MAX_TENSOR_VALUES = 2**22
# Weights the evaluator builds at most, whatever the exercise: 400 MB of float32, above the
# largest layer seen in real notebooks of the MNIST exercise (Dense(100000) on 784 inputs).
MAX_REBUILT_WEIGHTS = 100_000_000
# An input may hold this many times an image's values (padding 28x28 to 32x32 adds 31 %).
INPUT_GROWTH = 4


@dataclass(frozen=True)
class RebuildBounds:
    """The largest model the evaluator rebuilds for an exercise's data, checked on its config
    before Keras builds anything: the values of one input, and the weights in all."""

    input_values: int
    weights: int = MAX_REBUILT_WEIGHTS

    @classmethod
    def for_images(cls, image_shape: tuple[int, ...], largest_model: int = 0) -> RebuildBounds:
        """For images of ``image_shape``; an exercise whose models are larger than the default
        bound (``largest_model`` weights) gets ten times its largest."""
        return cls(INPUT_GROWTH * math.prod(image_shape), max(MAX_REBUILT_WEIGHTS, 10 * largest_model))

    def to_dict(self) -> dict[str, int]:
        return {"input_values": self.input_values, "weights": self.weights}


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
    dims = shape.get("config", {}).get("value") if isinstance(shape, dict) else shape  # a tuple, as Keras writes it
    if isinstance(dims, list) and dims and all(isinstance(each, list | dict) for each in dims):
        # a merging layer's inputs: a shape each
        if len(dims) > MAX_MERGED_INPUTS:
            raise UntrustedDataError(f"the model config's {key} names {len(dims)} inputs; at most {MAX_MERGED_INPUTS}")
        for each in dims:
            _check_shape(key, each, bounds)
        return
    if not isinstance(dims, list) or not all(dim is None or (isinstance(dim, int) and dim >= 0) for dim in dims):
        raise UntrustedDataError(f"the model config's {key} is not a shape")
    values = math.prod(dim for dim in dims if dim is not None)
    if any(dim is not None and dim > MAX_UNITS for dim in dims) or values > MAX_TENSOR_VALUES:
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
