"""Where a model's weights came from. Once a model's training has begun, only its own ``fit``
steps may change its weights: weights put into it otherwise (``set_weights``,
``load_weights``, an assignment to a layer's variables, in a callback or between fits) are
recorded, with the cell, and so is a model whose first ``fit`` starts from weights another
model's training produced. Putting back weights its own training produced (EarlyStopping's
``restore_best_weights``, a checkpoint of its own) is not a change.

How: a digest of the weights is taken where only training can have changed them (each epoch's
end, the end of a fit): those digests are the weights its training produced. A change made
by the notebook is checked at the next point where the weights matter (before a training step,
at an epoch's end, when a fit begins, when the trained model is exported): weights that are
neither what they were nor what its training produced are a change of the notebook's. A change
by means the wrappers do not see (an assignment to a backend tensor) is still found where a
fit begins or the model is exported.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Modules whose calls to ``Variable.assign`` are Keras' own work (training, state syncs,
# metrics), not the notebook's.
LIBRARY_MODULES = ("keras", "tensorflow", "jax", "torch", "optree", "numpy", "grader")
# Assignments that keep training as it is: a learning rate schedule.
SCHEDULED = ("learning_rate",)


def weights_digest(model: Any) -> str | None:
    """A digest of ``model``'s weights (None when they cannot be read now)."""
    try:
        weights = model.get_weights()
    except Exception:
        return None
    digest = hashlib.blake2b(digest_size=16)
    for weight in weights:
        array = np.ascontiguousarray(weight)
        digest.update(f"{array.shape}{array.dtype.str}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass
class ModelWeights:
    """One model's weights, as far as their provenance goes."""

    model_id: int
    fits_started: int = 0
    # The fit running now (its number), or None between fits
    in_fit: int | None = None
    # The digest of the weights as they last were when nothing was amiss
    clean: str | None = None
    fit_began_with: str | None = None
    produced: set[str] = field(default_factory=set)
    # Changes made by the notebook since ``clean``, not yet judged
    pending: list[dict[str, Any]] = field(default_factory=list)
    # Changes judged to have put weights into the model that its training did not produce
    events: list[dict[str, Any]] = field(default_factory=list)

    def when(self) -> str:
        if self.in_fit is not None:
            return f"during fit {self.in_fit}"
        return f"after fit {self.fits_started}" if self.fits_started else "before its first fit"


class WeightProvenance:
    """The provenance of every recorded model's weights, by ``id(model)``."""

    def __init__(self, cell_position: Callable[[], int], name_of: Callable[[Any], str]) -> None:
        self._cell_position = cell_position
        self._name_of = name_of
        self.models: dict[int, ModelWeights] = {}
        self._objects: dict[int, Any] = {}
        # digest -> id of the model whose training produced it
        self._produced_by: dict[str, int] = {}
        self._inside = threading.local()

    def state(self, model: Any) -> ModelWeights:
        self._objects[id(model)] = model
        return self.models.setdefault(id(model), ModelWeights(id(model)))

    # Where only training changed the weights
    def fit_begins(self, model: Any) -> None:
        state = self.state(model)
        digest = weights_digest(model)
        if state.fits_started == 0:
            source = self._produced_by.get(digest or "")
            if source is not None and source != id(model):
                trained = self._name_of(self._objects[source])
                self._commit(
                    state, [self._change(state, f"it started from weights that the training of {trained} produced")]
                )
        else:
            unseen = "its weights were changed by means the grader does not see"
            self._settle(state, digest, unseen=unseen)
        state.fits_started += 1
        state.in_fit = state.fits_started
        state.clean = state.fit_began_with = digest

    def step_begins(self, model: Any) -> None:
        state = self.state(model)
        if state.pending:
            self._settle(state, weights_digest(model))

    def trained(self, model: Any) -> None:
        """An epoch, or the fit, ended: its weights are what training produced, unless the
        notebook changed them since."""
        state = self.state(model)
        digest = weights_digest(model)
        if state.pending and not self._settle(state, digest):
            return
        if digest is not None and digest != state.fit_began_with:  # a fit that took no step produced nothing
            state.produced.add(digest)
            self._produced_by.setdefault(digest, id(model))
        state.clean = digest

    def fit_ends(self, model: Any) -> None:
        """``fit`` returned, before its model is exported."""
        state = self.state(model)
        state.in_fit = None
        unseen = "its weights were changed at the end of its fit by means the grader does not see"
        self._settle(state, weights_digest(model), unseen=unseen)

    def after_training(self, model: Any) -> list[dict[str, Any]]:
        """The changes judged since ``model``'s last export (after the notebook's last cell)."""
        state = self.state(model)
        if state.pending:
            self._settle(state, weights_digest(model))
        return list(state.events)

    # What the notebook did
    def changed(self, what: str, owners: list[Any]) -> None:
        """The notebook changed the weights of ``owners`` (``what`` says how)."""
        for model in owners:
            state = self.models.get(id(model))
            if state is not None and state.fits_started:
                state.pending.append(self._change(state, what))

    def step_counter_set(self, model: Any) -> None:
        state = self.state(model)
        self._commit(state, [self._change(state, "the optimizer's step counter was set")])

    def owners(self, variables: list[Any]) -> list[Any]:
        """The recorded models that hold any of ``variables`` among their weights."""
        wanted = {id(variable) for variable in variables}
        return [model for model in self._objects.values() if any(id(weight) in wanted for weight in _weights(model))]

    def step_counters(self, variable: Any) -> list[Any]:
        """The recorded models whose optimizer counts its steps in ``variable``."""
        return [model for model in self._objects.values() if _iterations(model) is variable]

    def operating(self) -> bool:
        """Whether a wrapped operation (``set_weights``, ``load_weights``) is running in this thread."""
        return bool(getattr(self._inside, "depth", 0))

    def operation(self) -> _Operation:
        return _Operation(self._inside)

    # Judging
    def _change(self, state: ModelWeights, what: str) -> dict[str, Any]:
        return {"what": what, "cell_position": self._cell_position(), "when": state.when()}

    def _settle(self, state: ModelWeights, digest: str | None, unseen: str | None = None) -> bool:
        """Judge the changes since the weights were last clean, now that they are ``digest``;
        whether the weights are clean."""
        pending, state.pending = state.pending, []
        if digest is None or digest == state.clean or digest in state.produced:
            return True
        if pending:
            source = self._produced_by.get(digest)
            if source is not None and source != state.model_id:
                trained = self._name_of(self._objects[source])
                pending = [
                    {**change, "what": f"{change['what']}, weights that the training of {trained} produced"}
                    for change in pending
                ]
            self._commit(state, pending)
        elif unseen is not None:
            self._commit(state, [self._change(state, unseen)])
        state.clean = digest
        return False

    def _commit(self, state: ModelWeights, changes: list[dict[str, Any]]) -> None:
        state.events.extend(changes[:5])
        if len(changes) > 5:
            state.events.append({**changes[5], "what": f"and {len(changes) - 5} more changes"})


class _Operation:
    """While it runs, assignments in this thread are part of a wrapped operation."""

    def __init__(self, local: threading.local) -> None:
        self._local = local

    def __enter__(self) -> None:
        self._local.depth = getattr(self._local, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        self._local.depth -= 1


def _weights(model: Any) -> list[Any]:
    try:
        return list(model.weights)
    except Exception:
        return []


def _iterations(model: Any) -> Any:
    try:
        return model.optimizer.iterations
    except Exception:
        return None


def provenance_callback(model: Any, provenance: WeightProvenance) -> Any:
    """A Keras callback, first in its fit's list, that tells ``provenance`` where training alone
    has changed ``model``'s weights."""
    import keras

    class WeightWitness(keras.callbacks.Callback):  # type: ignore[misc]
        # Each hook is quiet: the grader's bookkeeping never breaks the notebook's fit.
        def on_train_begin(self, logs: Any = None) -> None:
            _quietly(provenance.fit_begins, self)

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            # Only when something is pending: reading the weights each step would cost the step.
            if provenance.state(model).pending:
                _quietly(provenance.step_begins, self)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            _quietly(provenance.trained, self)

        def on_train_end(self, logs: Any = None) -> None:
            _quietly(provenance.trained, self)

    witness = WeightWitness()
    witness.set_model(model)
    return witness


def _quietly(step: Callable[[Any], None], witness: Any) -> None:
    try:
        step(witness.model)  # Keras' ``Callback.model`` syncs a JAX model's state first
    except Exception:
        pass


def wrap_weight_changes(keras: Any, provenance: WeightProvenance) -> None:
    """Record ``set_weights``, ``load_weights`` and the notebook's own assignments to variables."""
    layer_class = keras.layers.Layer
    original_set = layer_class.set_weights

    def set_weights(layer: Any, weights: Any) -> Any:
        if provenance.operating():  # a part of load_weights
            return original_set(layer, weights)
        owners = provenance.owners(_weights(layer))
        with provenance.operation():
            result = original_set(layer, weights)
        provenance.changed(f"set_weights on {_describe(layer, owners)}", owners)
        return result

    set_weights.__wrapped__ = original_set  # type: ignore[attr-defined]
    layer_class.set_weights = set_weights
    model_class = keras.Model
    original_load = model_class.load_weights

    def load_weights(model: Any, filepath: Any, *args: Any, **kwargs: Any) -> Any:
        with provenance.operation():
            result = original_load(model, filepath, *args, **kwargs)
        provenance.changed(f"load_weights({str(filepath)[:80]!r})", [model])
        return result

    load_weights.__wrapped__ = original_load  # type: ignore[attr-defined]
    model_class.load_weights = load_weights
    optimizer_class = keras.optimizers.Optimizer
    original_optimizer_set = optimizer_class.set_weights

    def set_optimizer_weights(optimizer: Any, weights: Any) -> Any:
        counter = getattr(optimizer, "iterations", None)
        before = _value(counter)
        with provenance.operation():
            result = original_optimizer_set(optimizer, weights)
        if counter is not None and _value(counter) != before:
            for model in provenance.step_counters(counter):
                provenance.step_counter_set(model)
        return result

    set_optimizer_weights.__wrapped__ = original_optimizer_set  # type: ignore[attr-defined]
    optimizer_class.set_weights = set_optimizer_weights
    from keras.src.backend.common.stateless_scope import in_stateless_scope
    from keras.src.backend.common.variables import Variable

    for name in ("assign", "assign_add", "assign_sub"):
        setattr(Variable, name, _recorded_assignment(getattr(Variable, name), name, provenance, in_stateless_scope))


def _recorded_assignment(
    original: Callable[..., Any], name: str, provenance: WeightProvenance, in_stateless_scope: Callable[[], bool]
) -> Callable[..., Any]:
    def assign(variable: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(variable, value, *args, **kwargs)
        if provenance.operating() or in_stateless_scope() or not _called_by_the_notebook():
            return result
        path = str(getattr(variable, "path", "") or getattr(variable, "name", ""))
        if path.endswith(SCHEDULED):
            return result
        for model in provenance.step_counters(variable):
            provenance.step_counter_set(model)
        owners = provenance.owners([variable])
        provenance.changed(f"{name}() to {path[:80]}", owners)
        return result

    assign.__wrapped__ = original  # type: ignore[attr-defined]
    return assign


def _value(variable: Any) -> Any:
    try:
        return int(np.asarray(variable))
    except Exception:
        return None


def _called_by_the_notebook() -> bool:
    """Whether the code that called the wrapped method (two frames up) is the notebook's own."""
    module = str(sys._getframe(2).f_globals.get("__name__", ""))
    return module.split(".")[0] not in LIBRARY_MODULES


def _describe(layer: Any, owners: list[Any]) -> str:
    if any(layer is owner for owner in owners):
        return "the model"
    return f"its layer {str(getattr(layer, 'name', 'a layer'))[:60]}"
