"""The spec's reference models, built, compiled and fed as the exercise asks. Imports TensorFlow."""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.evaluation.rebuild import build_model
from grader.spec.datasets import Dataset, prepare_images
from grader.spec.exercise import ModelSpec, Spec

ONE_HOT_LOSS = "categorical_crossentropy"


def training_arrays(spec: Spec, dataset: Dataset, model: ModelSpec) -> tuple[Any, Any, Any, Any]:
    """``x_train, y_train, x_test, y_test`` prepared as the exercise asks; the labels one-hot
    for the categorical cross-entropy, as they are for its sparse form and a binary classifier."""
    import keras

    def labels(classes: np.ndarray) -> Any:
        return keras.utils.to_categorical(classes, spec.data.classes) if model.loss == ONE_HOT_LOSS else classes

    return (
        prepare_images(dataset.x_train, spec.data),
        labels(dataset.y_train),
        prepare_images(dataset.x_test, spec.data),
        labels(dataset.y_test),
    )


def compiled_reference(model_spec: ModelSpec, spec: Spec, x_train: Any, **compile_options: Any) -> Any:
    """The spec's model, built and compiled as the exercise asks (plus ``compile_options``), a
    ``Normalization`` layer that takes the model's inputs adapted on ``x_train``, as the
    solution's own was (Keras' structured-data examples adapt it on the training rows)."""
    import keras

    model = build_model(spec.expected_architecture(model_spec))
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization) and layer.input is model.inputs[0]:
            layer.adapt(x_train)
    learning_rate: Any = model_spec.learning_rate
    if model_spec.schedule is not None:
        learning_rate = keras.optimizers.schedules.deserialize(
            {"class_name": model_spec.schedule.class_name, "config": dict(model_spec.schedule.config)}
        )
    optimizer = keras.optimizers.get({"class_name": model_spec.optimizer, "config": {"learning_rate": learning_rate}})
    metric = "mae" if spec.data.task == "regression" else "accuracy"
    model.compile(optimizer=optimizer, loss=model_spec.loss, metrics=[metric], **compile_options)
    return model
