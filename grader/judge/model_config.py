"""Read a student's model from the JSON of ``model.get_config()``, as untrusted data,
into the canonical layer list of ``grader.spec.architecture``. Pure Python: no TensorFlow.

Equivalent spellings collapse to one form: ``Dense(400)`` followed by
``Activation('relu')`` is ``Dense(400, relu)``; ``Sequential`` and the
Functional API give the same chain; ``InputLayer`` only sets the input shape.
"""

from __future__ import annotations

from typing import Any

from grader.errors import UntrustedDataError
from grader.spec.architecture import Architecture
from grader.spec.layers import ACTIVATION_LAYERS, KINDS, MAX_UNITS, Layer, activation_name

MAX_LAYERS = 200


def parse_model_config(config: Any) -> Architecture:
    """Turn the JSON of ``model.get_config()`` (Sequential or Functional) into a chain.

    Raises ``UntrustedDataError`` saying what was found when the config is
    malformed, holds an unsupported layer, or is not a simple chain.
    """
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise UntrustedDataError("the model config has no list of layers")
    entries = config["layers"]
    if len(entries) > MAX_LAYERS:
        raise UntrustedDataError(f"the model has {len(entries)} layers; at most {MAX_LAYERS} are graded")
    if "input_layers" in config:
        entries = _functional_chain(entries)
    input_shape: tuple[int, ...] | None = None
    layers: list[Layer] = []
    for entry in entries:
        class_name, layer_config = _class_and_config(entry)
        if class_name == "InputLayer":
            input_shape = _shape_without_batch(layer_config.get("batch_shape") or layer_config.get("batch_input_shape"))
            continue
        if input_shape is None and not layers:
            # Keras 2 configs put `input_shape=` on the first layer itself
            input_shape = _shape_without_batch(layer_config.get("batch_input_shape"))
        layers.extend(_canonical_layers(class_name, layer_config, layers))
    return Architecture(input_shape=input_shape, layers=tuple(layers))


def _class_and_config(entry: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise UntrustedDataError("a layer entry in the model config has no class_name")
    layer_config = entry.get("config")
    if not isinstance(layer_config, dict):
        raise UntrustedDataError(f"the {entry['class_name']} layer has no config")
    return entry["class_name"], layer_config


def _functional_chain(entries: list[Any]) -> list[Any]:
    """Check that a Functional model is a single chain, and return it in order."""
    by_name: dict[str, Any] = {}
    parent: dict[str, str | None] = {}
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise UntrustedDataError("a layer of the Functional model has no name")
        by_name[name] = entry
        sources = _inbound_layer_names(entry.get("inbound_nodes", []))
        if len(sources) > 1:
            raise UntrustedDataError(
                f"layer {name!r} takes {len(sources)} inputs; only a straight chain of layers can be graded"
            )
        parent[name] = sources[0] if sources else None
    children: dict[str, list[str]] = {}
    for name, source in parent.items():
        if source is not None:
            children.setdefault(source, []).append(name)
    roots = [name for name, source in parent.items() if source is None]
    if len(roots) != 1:
        raise UntrustedDataError(f"the Functional model has {len(roots)} inputs; exactly one can be graded")
    chain = [roots[0]]
    while children.get(chain[-1]):
        following = children[chain[-1]]
        if len(following) > 1:
            raise UntrustedDataError(
                f"layer {chain[-1]!r} feeds {len(following)} layers; only a straight chain can be graded"
            )
        chain.append(following[0])
    return [by_name[name] for name in chain]


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
    return sorted(set(names))


def _shape_without_batch(shape: Any) -> tuple[int, ...] | None:
    if not isinstance(shape, list) or len(shape) < 2:
        return None
    dims = shape[1:]
    if not all(isinstance(dim, int) and 0 < dim <= MAX_UNITS for dim in dims):
        return None
    return tuple(dims)


def _canonical_layers(class_name: str, config: dict[str, Any], previous: list[Layer]) -> list[Layer]:
    """The canonical form of one Keras layer; may amend the previous layer (an activation
    layer after a linear Dense or Conv2D is that layer's activation)."""
    if class_name in ("Activation", *ACTIVATION_LAYERS):
        name = ACTIVATION_LAYERS.get(class_name) or activation_name(config.get("activation"))
        if previous and previous[-1].type in ("Dense", "Conv2D") and previous[-1].activation == "linear":
            previous[-1] = Layer(**{**previous[-1].__dict__, "activation": name})
            return []
        return [Layer(type="Activation", activation=name)]
    if class_name not in KINDS:
        raise UntrustedDataError(
            f"the model has a {class_name[:60]} layer, which the grader does not grade; "
            f"it grades {', '.join(sorted(KINDS))}"
        )
    return [Layer(type=class_name, **KINDS[class_name].read(config))]


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
REBUILDABLE_LAYERS = {*KINDS, "InputLayer", *ACTIVATION_LAYERS}
MAX_CONFIG_DEPTH = 12


def check_rebuildable(config: Any) -> None:
    """Raise ``UntrustedDataError`` unless Keras may rebuild ``config`` (``model.get_config()``
    of a Sequential or Functional model): every layer of the registry, every nested object a
    known Keras class of a Keras module, every activation a known function, nothing else."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise UntrustedDataError("the model config has no list of layers")
    if len(config["layers"]) > MAX_LAYERS:
        raise UntrustedDataError(f"the model has {len(config['layers'])} layers; at most {MAX_LAYERS} are graded")
    for entry in config["layers"]:
        class_name, _ = _class_and_config(entry)
        if class_name not in REBUILDABLE_LAYERS or entry.get("module") != "keras.layers":
            raise UntrustedDataError(f"the model has a {class_name[:60]} layer, which the grader does not rebuild")
        if entry.get("registered_name") not in (None, class_name):
            raise UntrustedDataError(f"the {class_name} layer is registered as {str(entry['registered_name'])[:60]}")
        _check_values(entry.get("config"), 0)
    _check_values({key: value for key, value in config.items() if key != "layers"}, 0)


def _check_values(value: Any, depth: int) -> None:
    if depth > MAX_CONFIG_DEPTH:
        raise UntrustedDataError("the model config is nested too deeply")
    if isinstance(value, list):
        for item in value:
            _check_values(item, depth + 1)
        return
    if not isinstance(value, dict):
        return
    if any(not isinstance(key, str) or key.startswith("__") for key in value):
        raise UntrustedDataError("the model config holds serialised code")
    if "class_name" in value:
        module, class_name = value.get("module"), value.get("class_name")
        if not isinstance(module, str) or class_name not in NESTED_OBJECTS.get(module, ()):
            raise UntrustedDataError(f"the model config holds a {str(class_name)[:60]} object of {str(module)[:60]}")
        if class_name == "function":
            activation_name(value)  # a known activation, or refused
        elif value.get("registered_name") not in (None, class_name):
            raise UntrustedDataError(f"the model config registers {str(value['registered_name'])[:60]}")
    for key, item in value.items():
        if key == "activation" and isinstance(item, str):
            activation_name(item)
        _check_values(item, depth + 1)
