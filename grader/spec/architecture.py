"""A model as the grader sees it: canonical layers (``grader.spec.layers``), each fed by the one
before it unless it names its inputs (a residual block, joined branches), after
an input shape. The form in which a spec states a model and in which the grader reads a
student's (``grader.evaluation.model_config``), compared, counted and summarised as
``model.summary()`` would. Pure Python: no TensorFlow."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from grader.spec.layers import MERGES, SHAPE_ONLY, Layer, Shape


@dataclass(frozen=True)
class SummaryRow:
    layer: Layer
    output: Shape | None  # the output's shape, unknown without an input shape
    params: int | None

    @property
    def output_text(self) -> str:
        """The output shape as ``model.summary()`` prints it, batch axis first."""
        return "?" if self.output is None else "(" + ", ".join(["None", *map(str, self.output)]) + ")"


@dataclass(frozen=True)
class Architecture:
    """A model's layers after an input of ``input_shape`` (no batch axis), in an order where
    each comes after the layers feeding it."""

    input_shape: Shape | None
    layers: tuple[Layer, ...]

    def compared_layers(self) -> tuple[Layer, ...]:
        """The layers that carry meaning for grading: shape-only layers left out."""
        return tuple(layer for layer in self.layers if layer.type not in SHAPE_ONLY)

    def _shapes(self) -> list[tuple[Shape, list[Shape]]]:
        """Per layer, its output shape and its weights' shapes; raises ``ValueError`` when the
        layers do not fit the input (a convolution on flat vectors, say) or a layer takes an
        input from no layer before it."""
        if self.input_shape is None:
            raise ValueError("the model has no input shape, so it has no weights yet")
        steps: list[tuple[Shape, list[Shape]]] = []
        for position, layer in enumerate(self.layers):
            sources = layer.inputs if layer.inputs is not None else (position - 1,)
            if any(not -1 <= source < position for source in sources):
                raise ValueError(f"layer {position + 1} takes an input from {sources}, not from layers before it")
            shapes = [self.input_shape if source == -1 else steps[source][0] for source in sources]
            if layer.type in MERGES:
                steps.append((MERGES[layer.type](shapes), []))
            elif len(shapes) != 1:
                raise ValueError(f"{layer.type} takes one input, not {len(shapes)}")
            else:
                steps.append((layer.kind.output(layer, shapes[0]), layer.kind.weights(layer, shapes[0])))
        return steps

    @property
    def is_chain(self) -> bool:
        """Whether each layer takes the one before it (a ``keras.Sequential`` can hold it)."""
        return all(layer.inputs is None for layer in self.layers)

    def summary(self) -> list[SummaryRow]:
        """The compared layers with output shape and parameters, as ``model.summary()`` lists them."""
        try:
            steps: list[tuple[Shape | None, list[Shape] | None]] = list(self._shapes())
        except ValueError:
            steps = [(None, None)] * len(self.layers)
        return [
            SummaryRow(layer, output, None if weights is None else sum(math.prod(shape) for shape in weights))
            for layer, (output, weights) in zip(self.layers, steps, strict=True)
            if layer.type not in SHAPE_ONLY
        ]

    def weight_shapes(self) -> list[Shape]:
        """Shapes of ``model.get_weights()`` in order; raises ``ValueError`` without an input
        shape or when the layers do not fit it."""
        return [shape for _, weights in self._shapes() for shape in weights]

    def output_shape(self) -> Shape:
        return self._shapes()[-1][0] if self.layers else self.input_shape or ()

    def param_count(self) -> int | None:
        """Total parameters (trainable or not), or None while they cannot be known."""
        try:
            return sum(math.prod(shape) for shape in self.weight_shapes())
        except ValueError:
            return None

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
            layers=tuple(Layer.from_dict(layer) for layer in data["layers"]),
        )


def with_inputs_checked(layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    """``layers`` as a spec states them, each ``inputs`` checked (positions of layers before
    it, -1 for the model's input) and left out where it names the layer before it, as the
    grader reads a model; ``ValueError`` naming the layer otherwise."""
    checked = []
    for position, layer in enumerate(layers):
        inputs = layer.inputs
        if inputs is not None:
            if not inputs or any(type(source) is not int or not -1 <= source < position for source in inputs):
                raise ValueError(
                    f"layer {position + 1} ({layer.type}) has inputs = {list(inputs)}: name layers before it by their "
                    "position, counted from 0, or -1 for the model's input"
                )
            if inputs == (position - 1,):
                layer = replace(layer, inputs=None)
        checked.append(layer)
    return tuple(checked)
