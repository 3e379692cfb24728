"""The layers the grader knows, one registry entry each: how a layer is read from a Keras
config, described, compared, and how its output shape and its weights follow from its input.
A model holding any other layer (``Lambda``, a custom class) is reported by name and never
rebuilt. Pure Python: no TensorFlow.

Shapes have no batch axis and are channels-last, as Keras' defaults are.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
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
    # Embedding: the vocabulary and the vector of each token
    input_dim: int | None = None
    output_dim: int | None = None
    # Recurrent layers: one output per step or the last only; GRU's bias layout (Keras 3: True)
    return_sequences: bool | None = None
    reset_after: bool | None = None
    # Bidirectional: the recurrent layer it runs both ways (its options are the fields above),
    # and how the two directions' outputs are merged
    wrapped: str | None = None
    merge_mode: str | None = None
    # In a model that is not a chain (a residual block): the positions in the model's layers of
    # the layers this one takes as inputs, -1 for the model's input; None: the layer before it
    inputs: tuple[int, ...] | None = None
    # Augmentation: RandomFlip's mode; the ranges of RandomRotation (lower, upper) and of
    # RandomZoom and RandomTranslation (height's lower, upper, then width's when it is given)
    mode: str | None = None
    factors: tuple[float, ...] | None = None
    # Normalization: where its mean and variance come from, "adapted" (weights of its own, set by
    # ``adapt()``: mean, variance and a count) or "given" (``mean=``, ``variance=``: constants of
    # its config, no weights)
    statistics: str | None = None

    @property
    def kind(self) -> LayerKind:
        return KINDS[self.type]

    def describe(self) -> str:
        """A short ``model.summary()``-like spelling, e.g. ``Dense(64, relu, L2=0.0001)``; in a
        model that is not a chain, where its inputs come from (layers counted from 1)."""
        described = self.kind.describe(self)
        if self.inputs is None:
            return described
        sources = ", ".join("the input" if position == -1 else f"layer {position + 1}" for position in self.inputs)
        return f"{described} of {sources}"

    def matches(self, expected: Layer) -> bool:
        """Whether this layer is the expected one, fed by the same layers, up to float32 round-off."""
        return (
            self.type == expected.type
            and self.inputs == expected.inputs
            and all(_same(getattr(self, key), getattr(expected, key)) for key in self.kind.keys)
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
        if layer.type in COMMUTATIVE and layer.inputs is not None:
            layer = replace(layer, inputs=tuple(sorted(layer.inputs)))  # Add([a, b]) is Add([b, a])
        if layer.statistics not in (None, *STATISTICS):
            raise ValueError(f"statistics = {layer.statistics!r}; known: {', '.join(STATISTICS)}")
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
        elif layer.type in RECURRENT:
            parts = [str(layer.units), layer.activation or "tanh", *(["sequences"] if layer.return_sequences else [])]
        elif layer.type == "Bidirectional":
            parts = [wrapped_layer(layer).describe(), layer.merge_mode or "concat"]
        elif layer.type in MERGES:
            return layer.type
        elif layer.type in ("Conv2D", "Conv1D"):
            parts = [str(layer.filters), _size(layer.kernel_size), layer.activation or "linear"]
        elif layer.type in ("MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "AveragePooling1D"):
            parts = [_size(layer.pool_size)]
        elif layer.type == "Normalization":
            parts = ["given mean and variance" if layer.statistics == "given" else "adapted"]
        else:
            parts = [_value(getattr(layer, key)) for key in self.keys if key not in _QUIET]
        if layer.strides and layer.strides != (layer.pool_size or (1,) * len(layer.strides)):
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
_QUIET = ("strides", "padding", "l1", "l2", "use_bias", "return_sequences", "reset_after", "wrapped", "merge_mode")


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


def _pair(config: dict[str, Any], key: str, default: Any = None, rank: int = 2) -> tuple[int, ...] | None:
    """A size per spatial axis (``rank`` of them), from one int or a list."""
    value = config.get(key, default)
    if value is None:
        return None
    if isinstance(value, int):
        value = [value] * rank
    if (
        not isinstance(value, list | tuple)
        or len(value) != rank
        or not all(isinstance(item, int) and 0 < item <= 4096 for item in value)
    ):
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


def _read_conv(config: dict[str, Any], rank: int = 2) -> dict[str, Any]:
    _channels_last(config)
    if _pair(config, "dilation_rate", 1, rank) != (1,) * rank or config.get("groups", 1) != 1:
        raise UntrustedDataError("dilated or grouped convolutions are not graded")
    return {
        "filters": _number(config, "filters", 1, 65536, int),
        "kernel_size": _pair(config, "kernel_size", None, rank),
        "strides": _pair(config, "strides", 1, rank),
        "padding": _padding(config),
        **_read_weighted(config),
    }


def _read_pooling(config: dict[str, Any], rank: int = 2) -> dict[str, Any]:
    _channels_last(config)
    pool_size = _pair(config, "pool_size", 2, rank)
    return {
        "pool_size": pool_size,
        "strides": _pair(config, "strides", None, rank) or pool_size,
        "padding": _padding(config),
    }


def _read_embedding(config: dict[str, Any]) -> dict[str, Any]:
    if config.get("embeddings_regularizer") is not None or config.get("mask_zero") not in (None, False):
        raise UntrustedDataError("only plain Embedding layers are graded (no regularizer, no mask)")
    return {
        "input_dim": _number(config, "input_dim", 1, MAX_UNITS, int),
        "output_dim": _number(config, "output_dim", 1, MAX_UNITS, int),
    }


def _read_recurrent(config: dict[str, Any]) -> dict[str, Any]:
    odd = [key for key in ("return_state", "go_backwards", "stateful") if config.get(key)]
    if odd:
        raise UntrustedDataError(f"recurrent layers with {', '.join(odd)} are not graded")
    return {
        "units": _number(config, "units", 1, MAX_UNITS, int),
        **_read_weighted(config),
        "return_sequences": bool(config.get("return_sequences", False)),
    }


def _read_gru(config: dict[str, Any]) -> dict[str, Any]:
    return {**_read_recurrent(config), "reset_after": bool(config.get("reset_after", True))}


MERGE_MODES = ("concat", "sum", "ave", "mul")


def _read_bidirectional(config: dict[str, Any]) -> dict[str, Any]:
    """The recurrent layer it wraps (its options), and its merge mode; a backward layer of its
    own (other than the forward one run backwards) is not graded."""
    forward, backward = config.get("layer"), config.get("backward_layer")
    wrapped = forward.get("class_name") if isinstance(forward, dict) else None
    if wrapped not in RECURRENT or not isinstance(forward, dict) or not isinstance(forward.get("config"), dict):
        raise UntrustedDataError(f"a Bidirectional graded wraps a {', '.join(RECURRENT)}, not {str(wrapped)[:60]}")
    options = KINDS[wrapped].read(forward["config"])
    if backward is not None:
        backward_config = backward.get("config") if isinstance(backward, dict) else None
        if (
            not isinstance(backward_config, dict)
            or backward.get("class_name") != wrapped
            or not backward_config.get("go_backwards")
            or KINDS[wrapped].read({**backward_config, "go_backwards": False}) != options
        ):
            raise UntrustedDataError("a Bidirectional whose backward layer is not its forward one run backwards")
    merge_mode = config.get("merge_mode", "concat")
    if merge_mode not in MERGE_MODES:
        raise UntrustedDataError(f"a Bidirectional merging with {str(merge_mode)[:30]} is not graded")
    return {**options, "wrapped": wrapped, "merge_mode": merge_mode}


def wrapped_layer(layer: Layer) -> Layer:
    """The recurrent layer a Bidirectional ``layer`` runs both ways."""
    assert layer.wrapped is not None
    return replace(layer, type=layer.wrapped, wrapped=None, merge_mode=None, inputs=None)


def _bidirectional_output(layer: Layer, shape: Shape) -> Shape:
    one_way = _recurrent_output(wrapped_layer(layer), shape)
    return (*one_way[:-1], 2 * one_way[-1]) if layer.merge_mode == "concat" else one_way


FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _range(config: dict[str, Any], key: str) -> tuple[float, ...]:
    """An augmentation's range as (lower, upper): one number f means (-f, f)."""
    value: Any = config.get(key)
    values = [-value, value] if _is_number(value) else value
    if (
        not isinstance(values, list | tuple)
        or len(values) != 2
        or not all(_is_number(item) and -1e3 <= item <= 1e3 for item in values)
    ):
        raise UntrustedDataError(f"an augmentation layer has invalid {key} {str(value)[:40]!r}")
    return (float(values[0]), float(values[1]))


def _read_flip(config: dict[str, Any]) -> dict[str, Any]:
    _channels_last(config)
    if config.get("mode", "horizontal_and_vertical") not in FLIP_MODES:
        raise UntrustedDataError(f"a RandomFlip layer has invalid mode {str(config['mode'])[:40]!r}")
    return {"mode": str(config.get("mode", "horizontal_and_vertical"))}


def _read_rotation(config: dict[str, Any]) -> dict[str, Any]:
    _channels_last(config)
    return {"factors": _range(config, "factor")}


def _read_height_and_width(config: dict[str, Any]) -> dict[str, Any]:
    """RandomZoom's or RandomTranslation's ranges: the height's, then the width's where given."""
    _channels_last(config)
    width = _range(config, "width_factor") if config.get("width_factor") is not None else ()
    return {"factors": (*_range(config, "height_factor"), *width)}


def _read_layer_normalization(config: dict[str, Any]) -> dict[str, Any]:
    axis = config.get("axis", -1)
    if axis not in (-1, [-1]) or not config.get("center", True) or not config.get("scale", True):
        raise UntrustedDataError("only LayerNormalization over the last axis, centred and scaled, is graded")
    if config.get("rms_scaling"):
        raise UntrustedDataError("LayerNormalization with rms_scaling is not graded")
    return {}


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


# Normalization: its mean and variance adapted (weights) or given (constants of its config)
STATISTICS = ("adapted", "given")
# The values a Normalization's given mean (or variance) may hold: one per feature of its last axis
MAX_STATISTICS = 65_536
# Bounds of a given mean or variance's values (float32 holds up to 3.4e38)
MAX_STATISTIC = 1e30


def _statistic(config: dict[str, Any], key: str) -> int:
    """How many values a Normalization's given ``mean`` or ``variance`` holds: one number, or a
    flat list of them (one per feature), each finite and bounded, a variance's not negative."""
    value: Any = config.get(key)
    values = value if isinstance(value, list) else [value]
    low = 0.0 if key == "variance" else -MAX_STATISTIC
    if not 1 <= len(values) <= MAX_STATISTICS:
        raise UntrustedDataError(
            f"a Normalization layer has a {key} of {len(values):,} values; at most {MAX_STATISTICS:,} are graded"
        )
    if not all(_is_number(item) and low <= item <= MAX_STATISTIC for item in values):
        raise UntrustedDataError(
            f"a Normalization layer has {key} {str(value)[:60]!r}; a number or a list of numbers "
            f"(from {low:g} to {MAX_STATISTIC:g}) is graded"
        )
    return len(values)


def _read_normalization(config: dict[str, Any]) -> dict[str, Any]:
    """Keras' ``Normalization`` over the last axis (Keras 3 writes ``axis=-1`` as ``[-1]``), its
    mean and variance adapted (weights) or given (both numbers or lists of one length)."""
    axis = config.get("axis", -1)
    if axis not in (-1, [-1]):
        raise UntrustedDataError(
            f"a Normalization layer has axis {str(axis)[:40]}; only the last axis (axis=-1, Keras' default) is graded"
        )
    if config.get("invert", False) is not False:
        raise UntrustedDataError(
            f"a Normalization layer has invert={str(config.get('invert'))[:20]}; "
            "only invert=False (Keras' default, which normalises) is graded"
        )
    mean, variance = config.get("mean"), config.get("variance")
    if mean is None and variance is None:
        return {"statistics": "adapted"}
    if mean is None or variance is None or _statistic(config, "mean") != _statistic(config, "variance"):
        raise UntrustedDataError(
            "a Normalization layer is given a mean and a variance that do not match; "
            "give both, of one length (or adapt() it)"
        )
    return {"statistics": "given"}


def _normalization_weights(layer: Layer, shape: Shape) -> list[Shape]:
    """An adapted Normalization's mean and variance, one per feature of the last axis, and a
    scalar count (kept for older saved models; Keras 3's adapt() leaves it 0), as Keras counts
    them; given ones are no weights."""
    return [] if layer.statistics == "given" else [(shape[-1],), (shape[-1],), ()]


def _read_reshape(config: dict[str, Any]) -> dict[str, Any]:
    target = config.get("target_shape")
    if not isinstance(target, list | tuple) or not all(
        isinstance(item, int) and 0 < item <= MAX_UNITS for item in target
    ):
        raise UntrustedDataError(f"a Reshape layer has invalid target_shape {str(target)[:40]!r}")
    return {"target_shape": tuple(target)}


# -- shapes and weights ---------------------------------------------------------------


def _spatial(layer: Layer, shape: Shape, window: tuple[int, ...]) -> tuple[int, ...]:
    """The sizes along the spatial axes after a window slides over them: two for images, one
    for sequences (a ``...1D`` layer)."""
    rank = len(window)
    if len(shape) != rank + 1:
        needs = "images (height, width, channels)" if rank == 2 else "sequences (steps, channels)"
        raise ValueError(f"{layer.type} needs {needs}, not {shape}")
    strides = layer.strides or (1,) * rank
    if layer.padding == "same":
        sizes = [math.ceil(shape[axis] / strides[axis]) for axis in range(rank)]
    else:
        sizes = [(shape[axis] - window[axis]) // strides[axis] + 1 for axis in range(rank)]
    if min(sizes) < 1:
        raise ValueError(f"{layer.describe()} makes an input of {'x'.join(map(str, shape[:-1]))} vanish")
    return tuple(sizes)


def _dense_weights(layer: Layer, shape: Shape) -> list[Shape]:
    assert layer.units is not None
    return [(shape[-1], layer.units), *([(layer.units,)] if layer.use_bias else [])]


def _conv_weights(layer: Layer, shape: Shape) -> list[Shape]:
    assert layer.kernel_size is not None and layer.filters is not None
    if len(shape) != len(layer.kernel_size) + 1:
        needs = "images (height, width, channels)" if len(layer.kernel_size) == 2 else "sequences (steps, channels)"
        raise ValueError(f"{layer.type} needs {needs}, not {shape}")
    return [(*layer.kernel_size, shape[-1], layer.filters), *([(layer.filters,)] if layer.use_bias else [])]


# Gates per unit of each recurrent layer: their kernels hold this many blocks of ``units``
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
RECURRENT = tuple(GATES)


def _sequence(layer: Layer, shape: Shape) -> None:
    if len(shape) != 2:
        raise ValueError(f"{layer.type} needs sequences (steps, features), not {shape}")


def _recurrent_output(layer: Layer, shape: Shape) -> Shape:
    _sequence(layer, shape)
    return (shape[0], layer.units or 0) if layer.return_sequences else (layer.units or 0,)


def _recurrent_weights(layer: Layer, shape: Shape) -> list[Shape]:
    """Kernel, recurrent kernel and bias, as Keras orders them; GRU's bias is two rows when it
    resets after the matrix product (Keras 3's default)."""
    _sequence(layer, shape)
    assert layer.units is not None
    width = GATES[layer.type] * layer.units
    bias: list[Shape] = [(2, width) if layer.reset_after else (width,)] if layer.use_bias else []
    return [(shape[-1], width), (layer.units, width), *bias]


def _embedded(layer: Layer, shape: Shape) -> Shape:
    if len(shape) != 1:
        raise ValueError(f"Embedding needs a sequence of token ids (steps,), not {shape}")
    return (shape[0], layer.output_dim or 0)


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


def _read_concatenate(config: dict[str, Any]) -> dict[str, Any]:
    if config.get("axis", -1) != -1:
        raise UntrustedDataError("a Concatenate is graded along the last axis only (axis=-1)")
    return {}


def _added(shapes: list[Shape]) -> Shape:
    if len(shapes) < 2 or any(shape != shapes[0] for shape in shapes):
        raise ValueError(f"Add needs two or more inputs of one shape, not {shapes}")
    return shapes[0]


def _concatenated(shapes: list[Shape]) -> Shape:
    if len(shapes) < 2 or any(shape[:-1] != shapes[0][:-1] for shape in shapes):
        raise ValueError(f"Concatenate needs two or more inputs alike but in their last axis, not {shapes}")
    return (*shapes[0][:-1], sum(shape[-1] for shape in shapes))


# The layers that merge several inputs (no weights): their output shape from their inputs' shapes
MERGES: dict[str, Callable[[list[Shape]], Shape]] = {"Add": _added, "Concatenate": _concatenated}
# Those whose inputs' order does not matter
COMMUTATIVE = ("Add",)


def _read_channels_last(config: dict[str, Any]) -> dict[str, Any]:
    """A layer with no options but its data format, which must be Keras' default."""
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


def _pooling_1d_defaults(layer: Layer) -> dict[str, Any]:
    return {"pool_size": (2,), "strides": layer.pool_size or (2,), "padding": "valid"}


def _pooled(layer: Layer, shape: Shape) -> Shape:
    return (*_spatial(layer, shape, layer.pool_size or (2, 2)), shape[-1])


def _pooled_1d(layer: Layer, shape: Shape) -> Shape:
    return (*_spatial(layer, shape, layer.pool_size or (2,)), shape[-1])


def _convolved(layer: Layer, shape: Shape) -> Shape:
    return (*_spatial(layer, shape, layer.kernel_size or (1, 1)), layer.filters or 0)


def _global(rank: int) -> Callable[[Layer, Shape], Shape]:
    def pooled(layer: Layer, shape: Shape) -> Shape:
        if len(shape) != rank + 1:
            raise ValueError(f"{layer.type} needs an input of {rank + 1} axes, not {shape}")
        return (shape[-1],)

    return pooled


POOLING = LayerKind(
    keys=("pool_size", "strides", "padding"), read=_read_pooling, output=_pooled, defaults=_pooling_defaults
)
POOLING_1D = LayerKind(
    keys=("pool_size", "strides", "padding"),
    read=lambda config: _read_pooling(config, 1),
    output=_pooled_1d,
    defaults=_pooling_1d_defaults,
)
GLOBAL_POOLING = LayerKind(keys=(), read=_read_channels_last, output=_global(2))
GLOBAL_POOLING_1D = LayerKind(keys=(), read=_read_channels_last, output=_global(1))
RECURRENT_KIND = LayerKind(
    keys=("units", "activation", "return_sequences", "l1", "l2", "use_bias"),
    read=_read_recurrent,
    output=_recurrent_output,
    weights=_recurrent_weights,
    defaults=lambda layer: {"activation": "tanh", "return_sequences": False},
)
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
    "Conv1D": LayerKind(
        keys=("filters", "kernel_size", "strides", "padding", "activation", "l1", "l2", "use_bias"),
        read=lambda config: _read_conv(config, 1),
        output=lambda layer, shape: (*_spatial(layer, shape, layer.kernel_size or (1,)), layer.filters or 0),
        weights=_conv_weights,
        defaults=lambda layer: {"strides": (1,), "padding": "valid", "activation": "linear"},
    ),
    "MaxPooling2D": POOLING,
    "AveragePooling2D": POOLING,
    "MaxPooling1D": POOLING_1D,
    "AveragePooling1D": POOLING_1D,
    "GlobalAveragePooling2D": GLOBAL_POOLING,
    "GlobalMaxPooling2D": GLOBAL_POOLING,
    "GlobalAveragePooling1D": GLOBAL_POOLING_1D,
    "GlobalMaxPooling1D": GLOBAL_POOLING_1D,
    "Embedding": LayerKind(
        keys=("input_dim", "output_dim"),
        read=_read_embedding,
        output=_embedded,
        weights=lambda layer, shape: [(layer.input_dim or 0, layer.output_dim or 0)],
    ),
    "SimpleRNN": RECURRENT_KIND,
    "LSTM": RECURRENT_KIND,
    "GRU": LayerKind(
        keys=("units", "activation", "return_sequences", "reset_after", "l1", "l2", "use_bias"),
        read=_read_gru,
        output=_recurrent_output,
        weights=_recurrent_weights,
        defaults=lambda layer: {"activation": "tanh", "return_sequences": False, "reset_after": True},
    ),
    "LayerNormalization": LayerKind(
        keys=(), read=_read_layer_normalization, weights=lambda layer, shape: [(shape[-1],)] * 2
    ),
    # A recurrent layer run forwards and backwards: the two directions' weights, forward first
    "Bidirectional": LayerKind(
        keys=(
            "wrapped",
            "units",
            "activation",
            "return_sequences",
            "reset_after",
            "merge_mode",
            "l1",
            "l2",
            "use_bias",
        ),
        read=_read_bidirectional,
        output=_bidirectional_output,
        weights=lambda layer, shape: 2 * _recurrent_weights(wrapped_layer(layer), shape),
        defaults=lambda layer: {
            "activation": "tanh",
            "return_sequences": False,
            "merge_mode": "concat",
            **({"reset_after": True} if layer.wrapped == "GRU" else {}),
        },
    ),
    # Augmentation: random only in training, the identity when a model predicts; no weights
    "RandomFlip": LayerKind(keys=("mode",), read=_read_flip),
    "RandomRotation": LayerKind(keys=("factors",), read=_read_rotation),
    "RandomZoom": LayerKind(keys=("factors",), read=_read_height_and_width),
    "RandomTranslation": LayerKind(keys=("factors",), read=_read_height_and_width),
    "Add": LayerKind(keys=(), read=_no_options),
    "Concatenate": LayerKind(keys=(), read=_read_concatenate),
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
    # Compared as a Normalization whatever its statistics (adapt() or the same mean and variance
    # given); they are described and counted
    "Normalization": LayerKind(
        keys=(),
        read=_read_normalization,
        weights=_normalization_weights,
        defaults=lambda layer: {"statistics": "adapted"},
    ),
}
# Layers that change no values and hold no weights: kept to rebuild a model, not compared.
SHAPE_ONLY = ("Flatten", "Reshape")
# Keras layer classes that are nothing but an activation function, by the name of that function.
ACTIVATION_LAYERS = {"ReLU": "relu", "Softmax": "softmax"}
