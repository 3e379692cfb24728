"""Keras' Normalization preprocessing layer, adapted on the training rows as Keras' examples of
structured data prepare features (``norm.adapt(x_train)``, then the model): read from the config
of a real Keras model, counted as Keras counts it, within the evaluator's allowlist, exported
as the kernel exports it and rebuilt as the evaluator rebuilds it, predicting as the notebook's
model did; the variants it does not grade refused, saying what they have."""

from __future__ import annotations

import numpy as np
import pytest

from grader.errors import UntrustedDataError
from grader.evaluation.limits import RebuildBounds
from grader.evaluation.model_config import check_rebuildable, parse_model_config
from grader.spec.layers import Layer
from tests.conftest import exported

keras = pytest.importorskip("keras", reason="needs Keras (the default test environment has it)")
BOUNDS = RebuildBounds(input_values=4096)


def rows(count: int = 200) -> np.ndarray:
    """Features far from mean 0 and variance 1, each its own: a model that did not normalise
    with the adapted statistics predicts otherwise."""
    generator = np.random.default_rng(7)
    return (generator.normal(size=(count, 30)) * np.arange(1, 31) + np.arange(30) * 10).astype("float32")


def structured_model(norm=None):
    """Keras' structured-data recipe: a Normalization adapted on the training rows first."""
    if norm is None:
        norm = keras.layers.Normalization()
        norm.adapt(rows())
    layers = keras.layers
    return keras.Sequential([keras.Input((30,)), norm, layers.Dense(8, activation="relu"), layers.Dense(1)])


def evaluator_weights(model, folder):
    """``model``'s weights as the kernel exports them and the evaluator loads them: the files'
    arrays, checked against the shapes of the rebuilt model's ``get_weights()``, floats only."""
    from grader.evaluation.evaluator import _load_weights
    from grader.kernel.export import export_model

    export_model(model, folder)
    paths = [str(path) for path in sorted(folder.glob("w*.npy"))]
    return _load_weights(paths, [tuple(weight.shape) for weight in model.get_weights()])


def test_an_adapted_normalization_is_read_counted_and_compared_as_keras_counts_it():
    model = structured_model()
    config = exported(model)
    architecture = check_rebuildable(config, BOUNDS)
    assert architecture == parse_model_config(config)
    # Keras: the mean and variance per feature and a count, non-trainable; 61 + 248 + 9
    assert architecture.param_count() == model.count_params() == 318
    assert architecture.weight_shapes() == [tuple(weight.shape) for weight in model.get_weights()]
    assert [row.params for row in architecture.summary()] == [61, 248, 9]
    assert [layer.describe() for layer in architecture.layers] == [
        "Normalization(adapted)", "Dense(8, relu)", "Dense(1, linear)",
    ]  # fmt: skip
    assert architecture.layers[0].matches(Layer.from_dict({"type": "Normalization"}))


def test_a_rebuilt_model_normalises_with_the_exported_statistics_and_predicts_as_the_original(tmp_path):
    from grader.evaluation.rebuild import build_model, model_from_config

    model = structured_model()
    config = exported(model)
    rebuilt = model_from_config(config, BOUNDS)
    assert [tuple(weight.shape) for weight in rebuilt.get_weights()] == [(30,), (30,), (), (30, 8), (8,), (8, 1), (1,)]
    fresh = rebuilt.predict(rows(20), verbose=0)  # mean 0 and variance 1, as built
    rebuilt.set_weights(evaluator_weights(model, tmp_path / "snapshot"))
    expected = model.predict(rows(20), verbose=0)
    np.testing.assert_allclose(rebuilt.predict(rows(20), verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(fresh, expected, rtol=1e-3, atol=1e-3)
    again = build_model(check_rebuildable(config, BOUNDS))  # from the grader's form, as a spec's reference is
    assert again.count_params() == model.count_params()
    assert parse_model_config(exported(again)) == parse_model_config(config)


def test_a_normalization_given_its_mean_and_variance_has_no_weights_and_rebuilds_from_its_config(tmp_path):
    from grader.evaluation.rebuild import build_model, model_from_config

    data = rows()
    norm = keras.layers.Normalization(mean=data.mean(axis=0).tolist(), variance=data.var(axis=0).tolist())
    model = structured_model(norm)
    config = exported(model)
    architecture = check_rebuildable(config, BOUNDS)
    assert architecture.layers[0].describe() == "Normalization(given mean and variance)"
    assert architecture.param_count() == model.count_params() == 257  # Keras counts no weights for it
    assert architecture.weight_shapes() == [tuple(weight.shape) for weight in model.get_weights()]
    rebuilt = model_from_config(config, BOUNDS)
    rebuilt.set_weights(evaluator_weights(model, tmp_path / "snapshot"))
    np.testing.assert_allclose(
        rebuilt.predict(rows(20), verbose=0), model.predict(rows(20), verbose=0), rtol=1e-5, atol=1e-5
    )
    assert build_model(architecture).count_params() == 257


def test_a_normalization_adapted_on_many_rows_is_rebuilt_and_its_rows_are_bounded():
    """An adapted layer's build config holds the rows it adapted on (all the training rows):
    they are not one example's values."""
    config = exported(structured_model())
    build = config["layers"][1]["build_config"]
    assert build["input_shape"] == [200, 30]
    build["input_shape"] = [5_000_000, 30]
    assert check_rebuildable(config, BOUNDS).param_count() == 318
    build["input_shape"] = [2**40, 30]
    with pytest.raises(UntrustedDataError, match=r"input_shape .* is larger than the grader rebuilds"):
        check_rebuildable(config, BOUNDS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"axis": 1},
            r"a Normalization layer has axis \[1\]; only the last axis \(axis=-1, Keras' default\) is graded",
        ),
        ({"axis": None}, r"a Normalization layer has axis \[\]; only the last axis \(axis=-1"),
        ({"invert": True}, r"a Normalization layer has invert=True; only invert=False \(Keras' default"),
    ],
)
def test_a_normalization_over_another_axis_or_inverted_is_refused_saying_what_it_has(options, message):
    norm = keras.layers.Normalization(**options)
    norm.adapt(rows())
    config = exported(structured_model(norm))
    for read in (parse_model_config, lambda config: check_rebuildable(config, BOUNDS)):
        with pytest.raises(UntrustedDataError, match=message):
            read(config)


def test_a_given_mean_or_variance_too_long_or_not_finite_is_refused_before_keras_builds_it():
    config = exported(structured_model(keras.layers.Normalization(mean=[0.0] * 30, variance=[1.0] * 30)))
    statistics = config["layers"][1]["config"]
    statistics["mean"] = statistics["variance"] = [1.0] * 100_000
    with pytest.raises(UntrustedDataError, match="a mean of 100,000 values; at most 65,536 are graded"):
        check_rebuildable(config, BOUNDS)
    statistics["mean"], statistics["variance"] = [0.0] * 30, [1.0] * 29 + [1e300]
    with pytest.raises(UntrustedDataError, match=r"has variance .*; a number or a list of numbers"):
        check_rebuildable(config, BOUNDS)
