"""Build Keras models from canonical architectures. Imports TensorFlow: used only by the
evaluator process and by the tools that train reference models, never by the pure stages."""

from __future__ import annotations

from typing import Any

from grader.spec.architecture import REBUILDABLE_LAYERS, Architecture


def build_model(architecture: Architecture) -> Any:
    """A ``keras.Sequential`` with exactly the layers of ``architecture``."""
    import keras

    if architecture.input_shape is None:
        raise ValueError("the model has no input shape, so it cannot be rebuilt")
    unsupported = sorted({layer.type for layer in architecture.layers} - set(REBUILDABLE_LAYERS))
    if unsupported:
        raise ValueError(f"the grader cannot rebuild layers of type {', '.join(unsupported)}")
    model = keras.Sequential([keras.Input(shape=architecture.input_shape)])
    for layer in architecture.layers:
        if layer.type == "Dense":
            regularizer = keras.regularizers.L1L2(l1=layer.l1, l2=layer.l2) if (layer.l1 or layer.l2) else None
            model.add(
                keras.layers.Dense(
                    layer.units, activation=layer.activation, use_bias=layer.use_bias, kernel_regularizer=regularizer
                )
            )
        elif layer.type == "Dropout":
            model.add(keras.layers.Dropout(layer.rate))
        else:
            model.add(keras.layers.Flatten())
    return model
