"""Where a model's weights came from, judged on digests of its weights at the points where only
training changed them: with stand-in models (weights as arrays), then Keras' own routes to the
weights in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from grader.kernel.provenance import WeightProvenance


class Model:
    def __init__(self, name: str, value: float = 0.0) -> None:
        self.name = name
        self.values = [np.full(3, value, dtype="float32")]

    def get_weights(self) -> list[np.ndarray]:
        return [value.copy() for value in self.values]

    def set(self, value: float) -> None:
        self.values = [np.full(3, value, dtype="float32")]


def printed_by(script: str, folder: Path, *arguments: str) -> Any:
    """What ``script`` printed last, as JSON, run in a Python process of its own."""
    path = folder / "script.py"
    path.write_text(script)
    completed = subprocess.run([sys.executable, str(path), *arguments], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def provenance() -> WeightProvenance:
    return WeightProvenance(lambda: 7, lambda model: model.name)


def train(watch: WeightProvenance, model: Model, *values: float) -> None:
    """A fit whose epochs leave the weights at ``values``."""
    watch.fit_begins(model)
    for value in values:
        model.set(value)
        watch.trained(model)
    watch.trained(model)  # the fit's end
    watch.fit_ends(model)


def events(watch: WeightProvenance, model: Model) -> list[str]:
    return [f"{event['what']} ({event['when']})" for event in watch.after_training(model)]


def test_restoring_weights_its_own_training_produced_is_no_change():
    watch, model = provenance(), Model("model_1")
    train(watch, model, 1.0, 2.0, 3.0)
    model.set(2.0)  # EarlyStopping's restore_best_weights, a checkpoint of its own
    watch.changed("set_weights on the model", [model])
    train(watch, model, 4.0)
    assert events(watch, model) == []


def test_weights_put_in_during_a_fit_or_between_fits_are_changes_with_where():
    watch, model, cheat = provenance(), Model("model_1"), Model("cheat")
    train(watch, cheat, 9.0)
    watch.fit_begins(model)
    model.set(1.0)
    watch.trained(model)
    model.set(9.0)  # a callback's set_weights, before the next step
    watch.changed("set_weights on the model", [model])
    watch.step_begins(model)
    assert events(watch, model) == [
        "set_weights on the model, weights that the training of cheat produced (during fit 1)"
    ]
    other = Model("model_2")
    train(watch, other, 1.0)
    other.set(5.0)  # no wrapper saw it: an assignment to a backend tensor
    train(watch, other, 6.0)
    assert events(watch, other) == ["its weights were changed by means the grader does not see (after fit 1)"]


def test_a_first_fit_from_weights_another_model_trained_is_a_change_and_a_fit_of_no_step_produces_nothing():
    watch, cheat, model = provenance(), Model("cheat"), Model("model_1")
    train(watch, cheat, 9.0)
    model.set(9.0)
    train(watch, model, 10.0)
    assert events(watch, model) == [
        "it started from weights that the training of cheat produced (before its first fit)"
    ]
    lazy = Model("model_3", 4.0)
    train(watch, lazy)  # epochs=0: its weights are not its training's
    lazy.set(9.5)
    watch.changed("set_weights on the model", [lazy])
    assert events(watch, lazy) == ["set_weights on the model (after fit 1)"]


# A process with the grader's instrumentation installed, as in a graded kernel, and 1,280 MNIST rows
MNIST_KERNEL = """
import json, sys, tempfile
from pathlib import Path
import numpy as np
import grader.kernel as hooks
facts = Path(tempfile.mkdtemp())
hooks.install(dict(facts_dir=str(facts), data_path=sys.argv[1], keras_dataset="mnist", image_shape=[28, 28],
                   model_names=[], quick=False, quick_train_rows=2048, quick_validation_rows=1000,
                   steps_per_execution=0))
import keras
(x, y), _ = keras.datasets.mnist.load_data()
x, y = x[:1280].reshape(-1, 784) / 255, keras.utils.to_categorical(y[:1280], 10)
"""

KERAS_ROUTES = (
    MNIST_KERNEL
    + """
def trained(callbacks=()):
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    model.fit(x, y, batch_size=128, epochs=3, verbose=0, callbacks=list(callbacks))
    return model
restored = trained([keras.callbacks.EarlyStopping(monitor="loss", patience=0, restore_best_weights=True)])
counter = trained()
state = [np.asarray(v) for v in counter.optimizer.variables]
state[0] = np.zeros_like(state[0])
counter.optimizer.set_weights(state)
counter.fit(x, y, batch_size=128, epochs=1, verbose=0)
assigned = trained()
assigned.layers[0].kernel.assign(np.zeros((784, 10)))
assigned.fit(x, y, batch_size=128, epochs=1, verbose=0)
hooks.finish()
manifest = json.loads((facts / "manifest.json").read_text())
print(json.dumps([[event["what"] for event in entry["weight_events"]] for entry in manifest["trained"].values()]))
"""
)


def test_keras_own_routes_to_the_weights_are_recorded_and_a_restore_is_not(mnist_path, tmp_path):
    """EarlyStopping's restore; the optimizer's step counter set through its set_weights; an
    assignment to a layer's kernel between fits: in a real Keras, in a process of its own."""
    restored, counter, assigned = printed_by(KERAS_ROUTES, tmp_path, str(mnist_path))
    assert restored == []
    assert counter == ["the optimizer's step counter was set"]
    assert len(assigned) == 1 and assigned[0].startswith("assign() to sequential")


ADAPTED_ROUTES = """
import json, sys, tempfile
from pathlib import Path
import numpy as np
import grader.kernel as hooks
facts = Path(tempfile.mkdtemp())
hooks.install(dict(facts_dir=str(facts), data_path="", keras_dataset="", image_shape=[30], model_names=[],
                   quick=False, quick_train_rows=2048, quick_validation_rows=1000, steps_per_execution=0))
import keras
generator = np.random.default_rng(0)
x = (generator.normal(size=(512, 30)) * 5 + 3).astype("float32")
y = (x[:, 0] > 3).astype("float32")
def adapted():
    norm = keras.layers.Normalization()
    norm.adapt(x)  # Keras' own preparation of the features, before the model is built and fit
    model = keras.Sequential([keras.Input((30,)), norm, keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    return model
prepared, donor, replaced = adapted(), adapted(), adapted()
replaced.layers[1].set_weights(donor.layers[1].get_weights())
replaced.fit(x, y, batch_size=64, epochs=1, verbose=0)
hooks.finish()
manifest = json.loads((facts / "manifest.json").read_text())
snapshot = facts / manifest["trained"]["1"]["snapshot"]
print(json.dumps([[[event["what"] for event in entry["weight_events"]] for entry in manifest["trained"].values()],
                  [[str(np.load(path).dtype), list(np.load(path).shape)] for path in sorted(snapshot.glob("w*.npy"))]]))
"""


def test_a_normalization_adapted_before_fit_is_no_change_and_a_dense_layer_s_weights_set_are(tmp_path):
    """``adapt()`` puts the mean and variance into a Normalization's weights before the model
    trains: Keras' own preparation, not weights from elsewhere; a Dense layer's weights set from
    another model between fits still are. The adapted layer's count (an integer) is exported
    as a float, as the grader reads every weight. In a real Keras, in a process of its own."""
    events, exported = printed_by(ADAPTED_ROUTES, tmp_path)
    prepared, donor, replaced = events
    assert prepared == [] and donor == []
    assert len(replaced) == 1 and replaced[0].startswith("set_weights on its layer dense")
    assert exported[:3] == [["float32", [30]], ["float32", [30]], ["float64", []]]


def test_training_methods_not_keras_own_are_named():
    """A train_step replaced on the model, or a notebook's subclass of keras.Sequential that
    overrides it, trains inside an ordinary-looking fit: the kernel names it."""
    import types

    import keras

    from grader.kernel.training import training_of_its_own

    def layers():
        return [keras.Input((3,)), keras.layers.Dense(2)]

    assert training_of_its_own(keras.Sequential(layers())) == []

    class Sneaky(keras.Sequential):
        def train_step(self, data):
            return super().train_step(data)

    assert training_of_its_own(Sneaky(layers())) == ["train_step of the notebook's class Sneaky"]
    replaced = keras.Sequential(layers())
    replaced.train_step = types.MethodType(lambda self, data: {}, replaced)
    assert training_of_its_own(replaced) == ["train_step replaced on the model"]


def test_optimizer_steps_outside_keras_training_are_counted_against_the_weights_they_update():
    """A GradientTape loop of the notebook's own, with any optimizer: each step it takes (once
    per trace in a tf.function) is counted against the variables it updates; Keras' own steps,
    inside fit or train_on_batch, are not."""
    from types import SimpleNamespace

    from grader.kernel.training import wrap_optimizer_steps

    class Optimizer:
        def apply(self, grads, trainable_variables=None):
            return "applied"

    ledger = SimpleNamespace(keras_training=0, applied_outside={})
    wrap_optimizer_steps(Optimizer, ledger)
    weights, other = object(), object()
    assert Optimizer().apply([1], [weights]) == "applied"
    Optimizer().apply([1], [weights])
    ledger.keras_training = 1  # inside fit
    Optimizer().apply([1], [weights, other])
    assert ledger.applied_outside == {id(weights): 2}


HIDDEN_ROUTES = (
    MNIST_KERNEL
    + """
def model():
    built = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    built.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    return built
def trained(built, callbacks=(), epochs=2, **kwargs):
    built.fit(x, y, batch_size=128, epochs=epochs, verbose=0, callbacks=list(callbacks), **kwargs)
    return built
def smuggle(target):  # an assignment to the backend's own variable: no wrapper of Keras' sees it
    target.layers[0].kernel.value.assign(np.full((784, 10), 0.01, "float32"))
class LastEpoch(keras.callbacks.Callback):
    def __init__(self, change):
        super().__init__()
        self.change = change
    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.params["epochs"] - 1:
            self.change(self.model)
class Validated(keras.callbacks.Callback):
    def on_test_end(self, logs=None):
        smuggle(self.model)
def at_batch(wanted, batch, target):
    if batch == wanted:
        smuggle(target)
def directly(target):  # the backend variable's own assignment, below Keras' assign
    target.layers[0].bias._direct_assign(np.ones(10, "float32"))
def passing_for_keras(target):  # code that says it is Keras' own
    exec("model.layers[0].kernel.assign(np.zeros((784, 10)))", {"__name__": "keras.src", "model": target, "np": np})
built = model()
smuggle(built)  # before its first fit, by a route no wrapper sees
first = model()
second = model()
second.set_weights(first.get_weights())  # the same initial weights for a fair comparison: no change
checkpoint = keras.callbacks.ModelCheckpoint(str(facts.parent / "best.weights.h5"), save_weights_only=True)
stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, restore_best_weights=True)
models = [
    trained(built),
    trained(first), trained(second, [checkpoint, stop]),
    trained(model(), [LastEpoch(smuggle)]),
    trained(model(), [LastEpoch(passing_for_keras)]),
    # ``m``: the model being trained when the lambda runs
    trained(m := model(), [keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: at_batch(9, b, m))]),
    trained(model(), [Validated()], validation_split=0.1),
    trained(m := model(), [keras.callbacks.LambdaCallback(on_train_end=lambda logs: directly(m))]),
]
hooks.finish()
manifest = json.loads((facts / "manifest.json").read_text())
print(json.dumps([[event["what"] for event in entry["weight_events"]] for entry in manifest["trained"].values()]))
"""
)


def test_weights_changed_by_routes_no_wrapper_sees_are_caught_between_the_witnesses(mnist_path, tmp_path):
    """Weights put into a model before its first fit by a backend tensor's assignment; a
    callback of the notebook's that changes them at the last epoch's end, after a step, in
    validation's hooks or at the fit's end, by such a route or by code passing for Keras' own:
    each is caught. Untrained weights copied between models, a checkpoint and EarlyStopping's
    restore are not changes. In a real Keras, in a process of its own."""
    built, first, second, last_epoch, passing, batch_end, validated, train_end = printed_by(
        HIDDEN_ROUTES, tmp_path, str(mnist_path)
    )
    assert built == [
        "it started from weights that neither its initializers nor its training produced (sequential/dense/kernel)"
    ]
    assert first == [] and second == []
    assert last_epoch == ["its weights were changed by a callback at an epoch's end by means the grader does not see"]
    assert passing == last_epoch
    # at the 10th step of each of its two epochs
    assert batch_end == 2 * [
        "its weights were changed by a callback after a training step by means the grader does not see"
    ]
    assert validated == 2 * [  # in each epoch's validation
        "its weights were changed between a training step and its epoch's end by means the grader does not see"
    ]
    assert train_end == ["its weights were changed by a callback at its fit's end by means the grader does not see"]
