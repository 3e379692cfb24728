"""The layers the grader knows, one registry entry each: how a layer is read from a Keras
config, described, compared, and how its output shape and its weights follow from its input.
A model holding any other layer (``Lambda``, a custom class) is reported by name and never
rebuilt. Pure Python: no TensorFlow.

Shapes have no batch axis and are channels-last, as Keras' defaults are.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from grader.errors import UntrustedDataError

Shape = tuple[int, ...]
MAX_UNITS = 1_000_000
# Activation functions by name; a config naming another is refused.
ACTIVATIONS = (
    "linear", "relu", "softmax", "sigmoid", "tanh", "elu", "selu", "softplus", "softsign", "swish", "silu",
    "gelu", "exponential", "leaky_relu", "relu6", "hard_sigmoid", "hard_silu", "log_softmax", "mish",
)  # fmt: skip


@dataclass(frozen=True)
class Layer:
    """One layer in canonical form: its type and the options that matter for grading (the
    rest are None). ``l1``/``l2`` are kernel-regularizer factors; ``margins`` a padding's
    top, bottom, left and right."""

    type: str
    units: int | None = None
    activation: str | None = None
    rate: float | None = None
    l1: float = 0.0
    l2: float = 0.0
    use_bias: bool = True
    filters: int | None = None
    kernel_size: tuple[int, ...] | None = None
    strides: tuple[int, ...] | None = None
    padding: str | None = None
    pool_size: tuple[int, ...] | None = None
    scale: float | None = None
    offset: float | None = None
    target_shape: tuple[int, ...] | None = None
    margins: tuple[int, ...] | None = None
    stddev: float | None = None
    negative_slope: float | None = None

    @property
    def kind(self) -> LayerKind:
        return KINDS[self.type]

    def describe(self) -> str:
        """A short ``model.summary()``-like spelling, e.g. ``Dense(64, relu, L2=0.0001)``."""
        return self.kind.describe(self)

    def matches(self, expected: Layer) -> bool:
        """Whether this layer is the expected one, up to float32 round-off."""
        return self.type == expected.type and all(
            _same(getattr(self, key), getattr(expected, key)) for key in self.kind.keys
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in fields(self)
            if (value := getattr(self, field.name)) is not None
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layer:
        """A layer from ``to_dict``'s form or a spec's TOML entry (lists become tuples)."""
        options: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        layer = cls(**options)
        if layer.type not in KINDS:
            raise ValueError(f"unknown layer type {layer.type!r}; known: {', '.join(sorted(KINDS))}")
        return layer.kind.normalised(layer)


@dataclass(frozen=True)
class LayerKind:
    """How one type of layer is read, compared and counted.

    ``keys``: the options compared and described. ``read``: the options of a Keras config.
    ``output``: the output shape for an input shape. ``weights``: the shapes of its weights in
    ``get_weights()`` order. ``defaults``: options a spec may leave out.
    """

    keys: tuple[str, ...]
    read: Callable[[dict[str, Any]], dict[str, Any]]
    output: Callable[[Layer, Shape], Shape] = lambda layer, shape: shape
    weights: Callable[[Layer, Shape], list[Shape]] = lambda layer, shape: []
    defaults: Callable[[Layer], dict[str, Any]] = lambda layer: {}

    def describe(self, layer: Layer) -> str:
        if layer.type == "Dense":
            parts = [str(layer.units), layer.activation or "linear"]
        elif layer.type == "Conv2D":
            parts = [str(layer.filters), _size(layer.kernel_size), layer.activation or "linear"]
        elif layer.type in ("MaxPooling2D", "AveragePooling2D"):
            parts = [_size(layer.pool_size)]
        else:
            parts = [_value(getattr(layer, key)) for key in self.keys if key not in _QUIET]
        if layer.strides and layer.strides != (layer.pool_size or (1, 1)):
            parts.append(f"strides {_size(layer.strides)}")
        if layer.padding not in (None, "valid"):
            parts.append(f"padding {layer.padding}")
        if layer.l1:
            parts.append(f"L1={layer.l1:g}")
        if layer.l2:
            parts.append(f"L2={layer.l2:g}")
        if not layer.use_bias:
            parts.append("no bias")
        return f"{layer.type}({', '.join(parts)})"

    def normalised(self, layer: Layer) -> Layer:
        """``layer`` with the options it left out set to their defaults."""
        missing = {key: value for key, value in self.defaults(layer).items() if getattr(layer, key) is None}
        return Layer(**{**layer.__dict__, **missing}) if missing else layer


# Options described by their position or not at all.
_QUIET = ("strides", "padding", "l1", "l2", "use_bias")


def _size(value: tuple[int, ...] | None) -> str:
    return "x".join(str(item) for item in value or ())


def _value(value: Any) -> str:
    return _size(value) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-12)
    return bool(a == b)


# -- reading Keras configs ------------------------------------------------------------


def _number(config: dict[str, Any], key: str, low: float, high: float, kind: type = float) -> Any:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise UntrustedDataError(f"a layer has invalid {key} {str(value)[:40]!r}")
    if kind is int and not float(value).is_integer():
        raise UntrustedDataError(f"a layer has invalid {key} {value!r}")
    return kind(value)


def _pair(config: dict[str, Any], key: str, default: Any = None) -> tuple[int, ...] | None:
    value = config.get(key, default)
    if value is None:
        return None
    if isinstance(value, int):
        value = [value, value]
    if not isinstance(value, list | tuple) or not all(isinstance(item, int) and 0 < item <= 4096 for item in value):
        raise UntrustedDataError(f"a layer has invalid {key} {str(value)[:40]!r}")
    return tuple(value)


def _padding(config: dict[str, Any]) -> str:
    padding = config.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise UntrustedDataError(f"a layer has invalid padding {str(padding)[:40]!r}")
    return str(padding)


def _channels_last(config: dict[str, Any]) -> None:
    if config.get("data_format") not in (None, "channels_last"):
        raise UntrustedDataError("only channels_last layers are graded (Keras' default)")


def activation_name(value: Any) -> str:
    """A Keras activation, as a config spells it, by name."""
    name = value
    if value is None:
        name = "linear"
    elif isinstance(value, dict):
        # Keras 3 serialises a function as {"module": ..., "class_name": "function", "config": "relu"}
        name = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    if name not in ACTIVATIONS:
        raise UntrustedDataError(f"unrecognised activation {str(value)[:60]!r}")
    return str(name)


def regularizer_factors(value: Any) -> tuple[float, float]:
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
        if isinstance(l1, (int, float)) and isinstance(l2, (int, float)) and math.isfinite(l1 + l2):
            return float(l1), float(l2)
    raise UntrustedDataError(f"unrecognised kernel regularizer {str(value)[:60]!r}")


def _read_weighted(config: dict[str, Any]) -> dict[str, Any]:
    """What a layer with a kernel shares with the others: activation, kernel regularizer, bias."""
    l1, l2 = regularizer_factors(config.get("kernel_regularizer"))
    return {
        "activation": activation_name(config.get("activation")),
        "l1": l1,
        "l2": l2,
        "use_bias": bool(config.get("use_bias", True)),
    }


def _read_dense(config: dict[str, Any]) -> dict[str, Any]:
    return {"units": _number(config, "units", 1, MAX_UNITS, int), **_read_weighted(config)}


def _read_conv(config: dict[str, Any]) -> dict[str, Any]:
    _channels_last(config)
    if _pair(config, "dilation_rate", 1) != (1, 1) or config.get("groups", 1) != 1:
        raise UntrustedDataError("dilated or grouped convolutions are not graded")
    return {
        "filters": _number(config, "filters", 1, 65536, int),
        "kernel_size": _pair(config, "kernel_size"),
        "strides": _pair(config, "strides", 1),
        "padding": _padding(config),
        **_read_weighted(config),
    }


def _read_pooling(config: dict[str, Any]) -> dict[str, Any]:
    _channels_last(config)
    pool_size = _pair(config, "pool_size", 2)
    return {"pool_size": pool_size, "strides": _pair(config, "strides") or pool_size, "padding": _padding(config)}


def _read_padding(config: dict[str, Any]) -> dict[str, Any]:
    _channels_last(config)
    value = config.get("padding", 1)
    if isinstance(value, int):
        value = [[value, value], [value, value]]
    elif isinstance(value, list) and len(value) == 2 and all(isinstance(item, int) for item in value):
        value = [[value[0], value[0]], [value[1], value[1]]]
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(pair, list) and len(pair) == 2 for pair in value)
        and all(isinstance(item, int) and 0 <= item <= 1024 for pair in value for item in pair)
    ):
        raise UntrustedDataError(f"a ZeroPadding2D layer has invalid padding {str(value)[:40]!r}")
    return {"margins": (value[0][0], value[0][1], value[1][0], value[1][1])}


def _read_batch_normalization(config: dict[str, Any]) -> dict[str, Any]:
    if config.get("axis", -1) not in (-1, [-1]) or not config.get("center", True) or not config.get("scale", True):
        raise UntrustedDataError("only BatchNormalization over the last axis, centred and scaled, is graded")
    return {}


def _read_reshape(config: dict[str, Any]) -> dict[str, Any]:
    target = config.get("target_shape")
    if not isinstance(target, list | tuple) or not all(
        isinstance(item, int) and 0 < item <= MAX_UNITS for item in target
    ):
        raise UntrustedDataError(f"a Reshape layer has invalid target_shape {str(target)[:40]!r}")
    return {"target_shape": tuple(target)}


# -- shapes and weights ---------------------------------------------------------------


def _spatial(layer: Layer, shape: Shape, window: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) != 3:
        raise ValueError(f"{layer.type} needs images (height, width, channels), not {shape}")
    strides = layer.strides or (1, 1)
    if layer.padding == "same":
        sizes = [math.ceil(shape[axis] / strides[axis]) for axis in (0, 1)]
    else:
        sizes = [(shape[axis] - window[axis]) // strides[axis] + 1 for axis in (0, 1)]
    if min(sizes) < 1:
        raise ValueError(f"{layer.describe()} makes images of {shape[0]}x{shape[1]} vanish")
    return sizes[0], sizes[1]


def _dense_weights(layer: Layer, shape: Shape) -> list[Shape]:
    assert layer.units is not None
    return [(shape[-1], layer.units), *([(layer.units,)] if layer.use_bias else [])]


def _conv_weights(layer: Layer, shape: Shape) -> list[Shape]:
    assert layer.kernel_size is not None and layer.filters is not None
    if len(shape) != 3:
        raise ValueError(f"Conv2D needs images (height, width, channels), not {shape}")
    return [(*layer.kernel_size, shape[-1], layer.filters), *([(layer.filters,)] if layer.use_bias else [])]


def _reshaped(layer: Layer, shape: Shape) -> Shape:
    assert layer.target_shape is not None
    if math.prod(layer.target_shape) != math.prod(shape):
        raise ValueError(f"Reshape{layer.target_shape} cannot hold an input of shape {shape}")
    return layer.target_shape


def _padded(layer: Layer, shape: Shape) -> Shape:
    assert layer.margins is not None
    if len(shape) != 3:
        raise ValueError(f"ZeroPadding2D needs images (height, width, channels), not {shape}")
    top, bottom, left, right = layer.margins
    return (shape[0] + top + bottom, shape[1] + left + right, shape[2])


def _no_options(config: dict[str, Any]) -> dict[str, Any]:
    return {}


def _read_global_pooling(config: dict[str, Any]) -> dict[str, Any]:
    _channels_last(config)
    return {}


def _read_rate(config: dict[str, Any]) -> dict[str, Any]:
    return {"rate": _number(config, "rate", 0, 0.999999)}


def _read_activation(config: dict[str, Any]) -> dict[str, Any]:
    return {"activation": activation_name(config.get("activation"))}


def _read_leaky_relu(config: dict[str, Any]) -> dict[str, Any]:
    # Keras 3 names it negative_slope, Keras 2 alpha
    return {"negative_slope": _number(config, "negative_slope" if "negative_slope" in config else "alpha", 0, 1e6)}


def _read_rescaling(config: dict[str, Any]) -> dict[str, Any]:
    return {"scale": _number(config, "scale", -1e6, 1e6), "offset": _number(config, "offset", -1e6, 1e6)}


def _pooling_defaults(layer: Layer) -> dict[str, Any]:
    return {"pool_size": (2, 2), "strides": layer.pool_size or (2, 2), "padding": "valid"}


def _pooled(layer: Layer, shape: Shape) -> Shape:
    return (*_spatial(layer, shape, layer.pool_size or (2, 2)), shape[-1])


def _convolved(layer: Layer, shape: Shape) -> Shape:
    return (*_spatial(layer, shape, layer.kernel_size or (1, 1)), layer.filters or 0)


POOLING = LayerKind(
    keys=("pool_size", "strides", "padding"), read=_read_pooling, output=_pooled, defaults=_pooling_defaults
)
GLOBAL_POOLING = LayerKind(keys=(), read=_read_global_pooling, output=lambda layer, shape: (shape[-1],))
KINDS: dict[str, LayerKind] = {
    "Dense": LayerKind(
        keys=("units", "activation", "l1", "l2", "use_bias"),
        read=_read_dense,
        output=lambda layer, shape: (*shape[:-1], layer.units or 0),
        weights=_dense_weights,
        defaults=lambda layer: {"activation": "linear"},
    ),
    "Conv2D": LayerKind(
        keys=("filters", "kernel_size", "strides", "padding", "activation", "l1", "l2", "use_bias"),
        read=_read_conv,
        output=_convolved,
        weights=_conv_weights,
        defaults=lambda layer: {"strides": (1, 1), "padding": "valid", "activation": "linear"},
    ),
    "MaxPooling2D": POOLING,
    "AveragePooling2D": POOLING,
    "GlobalAveragePooling2D": GLOBAL_POOLING,
    "GlobalMaxPooling2D": GLOBAL_POOLING,
    "Flatten": LayerKind(keys=(), read=_no_options, output=lambda layer, shape: (math.prod(shape),)),
    "Reshape": LayerKind(keys=("target_shape",), read=_read_reshape, output=_reshaped),
    "ZeroPadding2D": LayerKind(keys=("margins",), read=_read_padding, output=_padded),
    "Dropout": LayerKind(keys=("rate",), read=_read_rate),
    "SpatialDropout2D": LayerKind(keys=("rate",), read=_read_rate),
    "GaussianDropout": LayerKind(keys=("rate",), read=_read_rate),
    "GaussianNoise": LayerKind(keys=("stddev",), read=lambda config: {"stddev": _number(config, "stddev", 0, 1e6)}),
    "Activation": LayerKind(keys=("activation",), read=_read_activation),
    "LeakyReLU": LayerKind(keys=("negative_slope",), read=_read_leaky_relu),
    "BatchNormalization": LayerKind(
        keys=(), read=_read_batch_normalization, weights=lambda layer, shape: [(shape[-1],)] * 4
    ),
    "Rescaling": LayerKind(keys=("scale", "offset"), read=_read_rescaling, defaults=lambda layer: {"offset": 0.0}),
}
# Layers that change no values and hold no weights: kept to rebuild a model, not compared.
SHAPE_ONLY = ("Flatten", "Reshape")
# Keras layer classes that are nothing but an activation function, by the name of that function.
ACTIVATION_LAYERS = {"ReLU": "relu", "Softmax": "softmax"}
