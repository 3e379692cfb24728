"""Keras models rebuilt by the grader: a student's, from its exported config through Keras'
own deserialisation in safe mode, once the config has passed the allowlist of
``grader.evaluation.model_config.check_rebuildable``; a spec's reference, from its canonical
layers. Imports Keras: used by the evaluator process and the tools that train reference
models, never by the pure stages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from grader.evaluation.limits import RebuildBounds
from grader.evaluation.model_config import check_rebuildable
from grader.spec.architecture import Architecture
from grader.spec.layers import MERGES, Layer, wrapped_layer


def model_from_config(config: dict[str, Any], bounds: RebuildBounds) -> Any:
    """A student's model from ``model.get_config()``'s JSON, built, its weights not set (an
    adapted Normalization normalises with the weights ``set_weights`` puts in).
    Raises ``UntrustedDataError`` when the config holds anything outside the allowlist or its
    sizes are beyond ``bounds``, ``ValueError`` when Keras cannot rebuild it."""
    import keras

    check_rebuildable(config, bounds)
    try:
        with keras.saving.custom_object_scope({}):
            model = (keras.Model if "input_layers" in config else keras.Sequential).from_config(config)
    except (TypeError, KeyError, AttributeError) as error:
        raise ValueError(f"Keras could not rebuild the model from its config ({error})") from None
    if not model.built:
        raise ValueError("the model has no input shape, so it cannot be rebuilt")
    _normalising_with_its_weights(keras, model)
    return model


def _normalising_with_its_weights(keras: Any, model: Any) -> None:
    """Make ``model``'s Normalization layers normalise with their weights as they are when it
    predicts. Keras' Normalization normalises with tensors it computes from its weights (mean,
    variance) when it is adapted or its weights are loaded from a file (``finalize_state``), not
    when ``set_weights`` assigns them: without this, the rebuilt model would normalise with the
    mean 0 and variance 1 it was built with, whatever weights the notebook exported. Computed
    in each call, they are read from the weights inside the function Keras traces to predict."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.call = _finalising_first(layer, layer.call)


def _finalising_first(layer: Any, call: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(call)
    def finalised_call(*args: Any, **kwargs: Any) -> Any:
        layer.finalize_state()  # nothing to do for one given its mean and variance
        return call(*args, **kwargs)

    return finalised_call


def build_model(architecture: Architecture) -> Any:
    """A ``keras.Sequential`` with exactly the layers of ``architecture``; a Functional model
    wired as its layers say when it is not a chain (a residual block)."""
    import keras

    if architecture.input_shape is None:
        raise ValueError("the model has no input shape, so it cannot be rebuilt")
    if architecture.is_chain:
        return keras.Sequential(
            [keras.Input(shape=architecture.input_shape), *(_layer(keras, layer) for layer in architecture.layers)]
        )
    model_input = keras.Input(shape=architecture.input_shape)
    outputs: list[Any] = []
    for position, layer in enumerate(architecture.layers):
        sources = [model_input if source == -1 else outputs[source] for source in layer.inputs or (position - 1,)]
        built = _layer(keras, layer)
        outputs.append(built(sources) if layer.type in MERGES else built(sources[0]))
    return keras.Model(model_input, outputs[-1])


def _layer(keras: Any, layer: Layer) -> Any:
    return BUILDERS[layer.type](keras, layer)


def _regularizer(keras: Any, layer: Layer) -> Any:
    return keras.regularizers.L1L2(l1=layer.l1, l2=layer.l2) if (layer.l1 or layer.l2) else None


def _convolution(kind: str) -> Callable[[Any, Layer], Any]:
    return lambda keras, layer: getattr(keras.layers, kind)(
        layer.filters,
        layer.kernel_size,
        strides=layer.strides,
        padding=layer.padding,
        activation=layer.activation,
        use_bias=layer.use_bias,
        kernel_regularizer=_regularizer(keras, layer),
    )


def _pooling(kind: str) -> Callable[[Any, Layer], Any]:
    return lambda keras, layer: getattr(keras.layers, kind)(
        layer.pool_size, strides=layer.strides, padding=layer.padding
    )


def _recurrent(keras: Any, layer: Layer, **options: Any) -> Any:
    return getattr(keras.layers, layer.type)(
        layer.units,
        activation=layer.activation,
        use_bias=layer.use_bias,
        kernel_regularizer=_regularizer(keras, layer),
        return_sequences=layer.return_sequences,
        **options,
    )


def _ranged(kind: Any, layer: Layer) -> Any:
    """RandomZoom or RandomTranslation from its height range and, when given, its width range."""
    factors = layer.factors or (0.0, 0.0)
    return kind(height_factor=factors[:2], width_factor=factors[2:4] or None)


def _zero_padding(keras: Any, layer: Layer) -> Any:
    assert layer.margins is not None
    top, bottom, left, right = layer.margins
    return keras.layers.ZeroPadding2D(((top, bottom), (left, right)))


# How each layer type of the registry (grader.spec.layers) is made in Keras.
BUILDERS: dict[str, Callable[[Any, Layer], Any]] = {
    "Dense": lambda keras, layer: keras.layers.Dense(
        layer.units, activation=layer.activation, use_bias=layer.use_bias, kernel_regularizer=_regularizer(keras, layer)
    ),
    "Conv2D": _convolution("Conv2D"),
    "MaxPooling2D": _pooling("MaxPooling2D"),
    "AveragePooling2D": _pooling("AveragePooling2D"),
    "GlobalAveragePooling2D": lambda keras, layer: keras.layers.GlobalAveragePooling2D(),
    "GlobalMaxPooling2D": lambda keras, layer: keras.layers.GlobalMaxPooling2D(),
    "Flatten": lambda keras, layer: keras.layers.Flatten(),
    "Reshape": lambda keras, layer: keras.layers.Reshape(layer.target_shape),
    "ZeroPadding2D": _zero_padding,
    "Dropout": lambda keras, layer: keras.layers.Dropout(layer.rate),
    "SpatialDropout2D": lambda keras, layer: keras.layers.SpatialDropout2D(layer.rate),
    "GaussianDropout": lambda keras, layer: keras.layers.GaussianDropout(layer.rate),
    "GaussianNoise": lambda keras, layer: keras.layers.GaussianNoise(layer.stddev),
    "Activation": lambda keras, layer: keras.layers.Activation(layer.activation),
    "LeakyReLU": lambda keras, layer: keras.layers.LeakyReLU(negative_slope=layer.negative_slope),
    "BatchNormalization": lambda keras, layer: keras.layers.BatchNormalization(),
    "Rescaling": lambda keras, layer: keras.layers.Rescaling(layer.scale, offset=layer.offset),
    # Not adapted: a spec's reference normalises with mean 0 and variance 1 (weights it holds, or
    # constants where its statistics are given) until its weights are set
    "Normalization": lambda keras, layer: (
        keras.layers.Normalization(mean=0.0, variance=1.0)
        if layer.statistics == "given"
        else keras.layers.Normalization()
    ),
    "Conv1D": _convolution("Conv1D"),
    "MaxPooling1D": _pooling("MaxPooling1D"),
    "AveragePooling1D": _pooling("AveragePooling1D"),
    "GlobalAveragePooling1D": lambda keras, layer: keras.layers.GlobalAveragePooling1D(),
    "GlobalMaxPooling1D": lambda keras, layer: keras.layers.GlobalMaxPooling1D(),
    "Embedding": lambda keras, layer: keras.layers.Embedding(layer.input_dim, layer.output_dim),
    "SimpleRNN": lambda keras, layer: _recurrent(keras, layer),
    "LSTM": lambda keras, layer: _recurrent(keras, layer),
    "GRU": lambda keras, layer: _recurrent(keras, layer, reset_after=layer.reset_after),
    "LayerNormalization": lambda keras, layer: keras.layers.LayerNormalization(),
    "Add": lambda keras, layer: keras.layers.Add(),
    "Concatenate": lambda keras, layer: keras.layers.Concatenate(),
    "Bidirectional": lambda keras, layer: keras.layers.Bidirectional(
        BUILDERS[str(layer.wrapped)](keras, wrapped_layer(layer)), merge_mode=layer.merge_mode
    ),
    "RandomFlip": lambda keras, layer: keras.layers.RandomFlip(layer.mode),
    "RandomRotation": lambda keras, layer: keras.layers.RandomRotation(layer.factors),
    "RandomZoom": lambda keras, layer: _ranged(keras.layers.RandomZoom, layer),
    "RandomTranslation": lambda keras, layer: _ranged(keras.layers.RandomTranslation, layer),
}
