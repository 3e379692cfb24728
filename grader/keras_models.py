"""Build Keras models from canonical architectures. Imports TensorFlow: used only
by the evaluator process and by calibration, never by the pure stages."""

from __future__ import annotations

import time
from typing import Any

from grader.architecture import REBUILDABLE_LAYERS, Architecture
from grader.data import Dataset, prepare_images
from grader.spec import ModelSpec, Spec


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


def training_arrays(spec: Spec, dataset: Dataset) -> tuple[Any, Any, Any, Any]:
    """``x_train, y_train, x_test, y_test`` prepared as the exercise asks, labels one-hot."""
    import keras

    return (
        prepare_images(dataset.x_train, spec.data),
        keras.utils.to_categorical(dataset.y_train, spec.data.classes),
        prepare_images(dataset.x_test, spec.data),
        keras.utils.to_categorical(dataset.y_test, spec.data.classes),
    )


def compiled_reference(model_spec: ModelSpec, spec: Spec, **compile_options: Any) -> Any:
    """The spec's model, built and compiled as the exercise asks (plus ``compile_options``)."""
    import keras

    model = build_model(spec.expected_architecture(model_spec))
    optimizer = keras.optimizers.get(
        {"class_name": model_spec.optimizer, "config": {"learning_rate": model_spec.learning_rate}}
    )
    model.compile(optimizer=optimizer, loss=model_spec.loss, metrics=["accuracy"], **compile_options)
    return model


def epoch_timer() -> tuple[Any, list[float]]:
    """A callback that appends each epoch's wall time, in seconds, to the list it comes with."""
    import keras

    times: list[float] = []
    started: list[float] = []
    callback = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: times.append(round(time.perf_counter() - started[-1], 4)),
    )
    return callback, times
