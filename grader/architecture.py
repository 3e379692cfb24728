"""Canonical layer lists: parsed from an untrusted Keras model config, compared
with the spec, counted. Pure Python: no TensorFlow.

Equivalent spellings collapse to one form: ``Dense(400)`` followed by
``Activation('relu')`` is ``Dense(400, relu)``; ``Sequential`` and the
Functional API give the same chain; ``InputLayer`` only sets the input shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from grader.errors import UntrustedDataError

# Layers the grader can rebuild and evaluate by itself. Anything else in a
# student's model is reported by name, never deserialised.
REBUILDABLE_LAYERS = ("Dense", "Dropout", "Flatten")
# Layer classes that are nothing but an activation function.
ACTIVATION_LAYERS = {"ReLU": "relu", "Softmax": "softmax"}
# Layers that change no values and hold no weights.
SHAPE_ONLY_LAYERS = ("Flatten",)

MAX_LAYERS = 200
MAX_UNITS = 1_000_000


@dataclass(frozen=True)
class Layer:
    """One layer in canonical form. ``l1``/``l2`` are kernel-regularizer factors."""

    type: str
    units: int | None = None
    activation: str | None = None
    rate: float | None = None
    l1: float = 0.0
    l2: float = 0.0
    use_bias: bool = True

    def describe(self) -> str:
        """A short ``model.summary()``-like spelling, e.g. ``Dense(64, relu, L2=0.0001)``."""
        if self.type == "Dense":
            parts = [str(self.units), self.activation or "linear"]
            if self.l1:
                parts.append(f"L1={self.l1:g}")
            if self.l2:
                parts.append(f"L2={self.l2:g}")
            if not self.use_bias:
                parts.append("no bias")
            return f"Dense({', '.join(parts)})"
        if self.type == "Dropout":
            return f"Dropout({self.rate:g})"
        return f"{self.type}()"

    def matches(self, expected: Layer) -> bool:
        """Whether this layer is the expected one, up to float32 round-off."""
        return (
            self.type == expected.type
            and self.units == expected.units
            and (self.activation or "linear") == (expected.activation or "linear")
            and _close(self.rate, expected.rate)
            and _close(self.l1, expected.l1)
            and _close(self.l2, expected.l2)
            and self.use_bias == expected.use_bias
        )

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass(frozen=True)
class SummaryRow:
    layer: Layer
    width: int | None  # the output's size, unknown without an input shape
    params: int | None


@dataclass(frozen=True)
class Architecture:
    """A model as a chain of layers after an input of ``input_shape`` (no batch axis)."""

    input_shape: tuple[int, ...] | None
    layers: tuple[Layer, ...]

    def compared_layers(self) -> tuple[Layer, ...]:
        """The layers that carry meaning for grading: shape-only layers left out."""
        return tuple(layer for layer in self.layers if layer.type not in SHAPE_ONLY_LAYERS)

    def summary(self) -> list[SummaryRow]:
        """The compared layers with output shape and parameters, as ``model.summary()`` lists them."""
        width = math.prod(self.input_shape) if self.input_shape is not None else None
        rows = []
        for layer in self.layers:
            params: int | None = 0
            if layer.type == "Dense":
                assert layer.units is not None
                params = None if width is None else width * layer.units + (layer.units if layer.use_bias else 0)
                width = layer.units
            if layer.type not in SHAPE_ONLY_LAYERS:
                rows.append(SummaryRow(layer, width, params))
        return rows

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of ``model.get_weights()`` in order; needs a known input shape."""
        if self.input_shape is None:
            raise ValueError("the model has no input shape, so it has no weights yet")
        width = math.prod(self.input_shape)
        shapes: list[tuple[int, ...]] = []
        for layer in self.layers:
            if layer.type == "Dense":
                assert layer.units is not None
                shapes.append((width, layer.units))
                if layer.use_bias:
                    shapes.append((layer.units,))
                width = layer.units
        return shapes

    def param_count(self) -> int | None:
        """Total parameters, or None while the input shape is unknown."""
        if self.input_shape is None:
            return None
        return sum(math.prod(shape) for shape in self.weight_shapes())

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        shape = data.get("input_shape")
        return cls(
            input_shape=tuple(shape) if shape is not None else None,
            layers=tuple(Layer(**layer) for layer in data["layers"]),
        )


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-12)


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
