"""Canonical layer lists: the form in which a spec states a model and in which the
grader reads a student's model (``grader.judge.model_config``), compared and
counted. Pure Python: no TensorFlow."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Layers the grader can rebuild and evaluate by itself. Anything else in a
# student's model is reported by name, never deserialised.
REBUILDABLE_LAYERS = ("Dense", "Dropout", "Flatten")
# Layers that change no values and hold no weights.
SHAPE_ONLY_LAYERS = ("Flatten",)


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
