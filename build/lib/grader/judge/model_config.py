"""Read a student's model from the JSON of ``model.get_config()``, as untrusted data,
into the canonical layer list of ``grader.spec.architecture``. Pure Python: no TensorFlow.

Equivalent spellings collapse to one form: ``Dense(400)`` followed by
``Activation('relu')`` is ``Dense(400, relu)``; ``Sequential`` and the
Functional API give the same chain; ``InputLayer`` only sets the input shape.
"""

from __future__ import annotations

from typing import Any

from grader.errors import UntrustedDataError
from grader.spec.architecture import Architecture, Layer

# Layer classes that are nothing but an activation function.
ACTIVATION_LAYERS = {"ReLU": "relu", "Softmax": "softmax"}
MAX_LAYERS = 200
MAX_UNITS = 1_000_000


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


def _activation_name(value: Any) -> str:
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        # Keras 3 serialises a function as {"module": ..., "class_name": "function", "config": "relu"}
        inner = value.get("config")
        if isinstance(inner, str):
            return inner
        if isinstance(value.get("class_name"), str):
            return str(value["class_name"])
    raise UntrustedDataError(f"unrecognised activation {value!r}")


def _regularizer_factors(value: Any) -> tuple[float, float]:
    if value is None:
        return 0.0, 0.0
    if isinstance(value, str):
        # Keras' defaults for the string spellings
        defaults = {"l1": (0.01, 0.0), "l2": (0.0, 0.01), "l1_l2": (0.01, 0.01)}
        if value.lower() in defaults:
            return defaults[value.lower()]
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        factors = value["config"]
        l1, l2 = factors.get("l1", 0.0), factors.get("l2", 0.0)
        if isinstance(l1, (int, float)) and isinstance(l2, (int, float)):
            return float(l1), float(l2)
    raise UntrustedDataError(f"unrecognised kernel regularizer {value!r}")


def _canonical_layers(class_name: str, config: dict[str, Any], previous: list[Layer]) -> list[Layer]:
    """The canonical form of one Keras layer; may amend the previous Dense layer."""
    if class_name == "Dense":
        units = config.get("units")
        if not isinstance(units, int) or not 0 < units <= MAX_UNITS:
            raise UntrustedDataError(f"a Dense layer has invalid units {units!r}")
        l1, l2 = _regularizer_factors(config.get("kernel_regularizer"))
        return [
            Layer(
                type="Dense",
                units=units,
                activation=_activation_name(config.get("activation")),
                l1=l1,
                l2=l2,
                use_bias=bool(config.get("use_bias", True)),
            )
        ]
    if class_name == "Dropout":
        rate = config.get("rate")
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise UntrustedDataError(f"a Dropout layer has invalid rate {rate!r}")
        return [Layer(type="Dropout", rate=float(rate))]
    if class_name in ("Activation", *ACTIVATION_LAYERS):
        name = ACTIVATION_LAYERS.get(class_name) or _activation_name(config.get("activation"))
        if previous and previous[-1].type == "Dense" and previous[-1].activation == "linear":
            previous[-1] = Layer(**{**previous[-1].__dict__, "activation": name})
            return []
        return [Layer(type="Activation", activation=name)]
    if class_name == "Flatten":
        return [Layer(type="Flatten")]
    return [Layer(type=class_name)]
