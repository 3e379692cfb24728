"""Where a model's weights came from. A model's first ``fit`` must start from the weights its
initializers gave it (or another untrained model's), and once its training has begun, only its
own ``fit`` steps may change its weights: weights put into it otherwise (``set_weights``,
``load_weights``, an assignment to a layer's variables, in a callback or between fits) are
recorded, with the cell, and so is a model whose first ``fit`` starts from weights another
model's training produced. Putting back weights its own training produced (EarlyStopping's
``restore_best_weights``, a checkpoint of its own) is not a change.

How: each weight's digest is taken as Keras creates it (``Layer.add_weight``), and a digest of
all of a model's weights where only training can have changed them (each epoch's end, the end
of a fit): those are the weights its initializers and its training produced. A change made by
the notebook is checked at the next point where the weights matter (before a training step, at
an epoch's end, when a fit begins, when the trained model is exported): weights that are
neither what they were nor what its training produced are a change of the notebook's.

Whatever the route (an assignment to a backend tensor, code that passes for Keras' own): the
fit's callbacks are wrapped by two witnesses, the first sees the weights before any callback of
the notebook's runs and the last after all of them, so weights that differ between the two are
the notebook's callbacks' doing. Where the notebook's callbacks run between a training step
and the epoch's end (a batch's or validation's hooks), the first witness keeps the weights each
step left, and the last compares.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
import weakref
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
    return arrays_digest(weights)


def arrays_digest(arrays: list[Any]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for weight in arrays:
        array = np.ascontiguousarray(weight)
        digest.update(f"{array.shape}{array.dtype.str}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _variable_digest(variable: Any) -> str | None:
    try:
        return arrays_digest([np.asarray(variable)])
    except Exception:  # not readable now (created inside a traced function)
        return None


def _same_weights(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return len(first) == len(second) and all(
        a.shape == b.shape and np.array_equal(a, b, equal_nan=True) for a, b in zip(first, second, strict=True)
    )


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
    # The weights the last training step left, kept while the notebook's callbacks run between steps
    after_step: list[np.ndarray] | None = None

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
        # Each weight as Keras created it (by id, with a weak reference to tell a reused id),
        # and the digests of them all: what an untrained model's weights may be
        self._created: dict[int, tuple[Any, str]] = {}
        self._created_digests: set[str] = set()

    def state(self, model: Any) -> ModelWeights:
        self._objects[id(model)] = model
        return self.models.setdefault(id(model), ModelWeights(id(model)))

    def created(self, variable: Any) -> None:
        """Keras created ``variable``, a trainable weight, with its initializer's values."""
        digest = _variable_digest(variable)
        if digest is None:
            return
        try:
            reference: Any = weakref.ref(variable)
        except TypeError:
            return
        self._created[id(variable)] = (reference, digest)
        self._created_digests.add(digest)

    def _not_as_created(self, model: Any) -> list[str]:
        """The paths of ``model``'s trainable weights that hold neither what their initializer
        gave them nor what another weight was given as it was created."""
        changed = []
        for variable in _trainable(model):
            reference, digest = self._created.get(id(variable), (None, None))
            if reference is None or reference() is not variable:
                continue  # not created through add_weight while the grader watched
            now = _variable_digest(variable)
            if now is not None and now != digest and now not in self._created_digests:
                changed.append(str(getattr(variable, "path", "") or getattr(variable, "name", "a weight"))[:80])
        return changed

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
            elif changed := self._not_as_created(model):
                what = "it started from weights that neither its initializers nor its training produced"
                listed = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
                self._commit(state, [self._change(state, f"{what} ({listed})")])
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
        notebook changed them since (the notebook's callbacks after the last step among them)."""
        state = self.state(model)
        digest = weights_digest(model)
        after_step, state.after_step = state.after_step, None
        if after_step is not None and digest is not None and arrays_digest(after_step) != digest:
            unseen = (
                "its weights were changed between a training step and its epoch's end by means the grader does not see"
            )
            self._settle(state, digest, unseen=unseen)
            return
        if state.pending and not self._settle(state, digest):
            return
        if digest is not None and digest != state.fit_began_with:  # a fit that took no step produced nothing
            state.produced.add(digest)
            self._produced_by.setdefault(digest, id(model))
        state.clean = digest

    def training_ends(self, model: Any, averaged: bool) -> None:
        """The fit's last epoch is over, before the notebook's ``on_train_end``: an optimizer
        that keeps an average of the weights (``use_ema``) has put it into them; else they are
        what the last epoch left."""
        if averaged:
            self.trained(model)
        else:
            self.unchanged(model, "after its last epoch")

    def step_taken(self, model: Any) -> None:
        """A training step ended, before the notebook's callbacks see it: the weights it left."""
        try:
            self.state(model).after_step = [np.array(weight) for weight in model.get_weights()]
        except Exception:
            self.state(model).after_step = None

    def unchanged_since_step(self, model: Any, where: str) -> None:
        """The notebook's callbacks ran since the last step: the weights must be what it left."""
        state = self.state(model)
        if state.after_step is None:
            return
        try:
            now = [np.asarray(weight) for weight in model.get_weights()]
        except Exception:
            return
        if not _same_weights(now, state.after_step):
            state.after_step = None
            self.unchanged(model, where)
            self.step_taken(model)

    def unchanged(self, model: Any, where: str) -> None:
        """The notebook's callbacks ran since the weights were last clean: any change they made,
        by whatever route, is theirs (putting back weights its training produced aside)."""
        state = self.state(model)
        unseen = f"its weights were changed by a callback {where} by means the grader does not see"
        self._settle(state, weights_digest(model), unseen=unseen)

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


def _trainable(model: Any) -> list[Any]:
    try:
        return list(model.trainable_weights)
    except Exception:
        return []


def _iterations(model: Any) -> Any:
    try:
        return model.optimizer.iterations
    except Exception:
        return None


# The hooks through which the notebook's callbacks run between a training step and its epoch's end
BETWEEN_STEPS = (
    "on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end",
    "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
)  # fmt: skip


def runs_between_steps(callbacks: list[Any], base: type) -> bool:
    """Whether any of ``callbacks`` has a hook of its own that runs between training steps (a
    Keras class's included: what it is, not what it says it is, is compared)."""
    return any(
        name in vars(callback) or getattr(type(callback), name, None) is not getattr(base, name)
        for callback in callbacks
        for name in BETWEEN_STEPS
    )


def provenance_callbacks(model: Any, provenance: WeightProvenance, notebook_callbacks: list[Any]) -> tuple[Any, Any]:
    """Two Keras callbacks, the first and the last of its fit's list, that tell ``provenance``
    where training alone has changed ``model``'s weights, and where the notebook's callbacks
    between them did."""
    import keras

    base = keras.callbacks.Callback
    between_steps = runs_between_steps(notebook_callbacks, base)

    class WeightWitness(base):  # type: ignore[misc,valid-type]
        # Each hook is quiet: the grader's bookkeeping never breaks the notebook's fit.
        def on_train_begin(self, logs: Any = None) -> None:
            _quietly(provenance.fit_begins, self)

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            # Only when something is pending: reading the weights each step would cost the step.
            if provenance.state(model).pending:
                _quietly(provenance.step_begins, self)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if between_steps:
                _quietly(provenance.step_taken, self)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            _quietly(provenance.trained, self)

        def on_train_end(self, logs: Any = None) -> None:
            averaged = bool(getattr(getattr(model, "optimizer", None), "use_ema", False))
            _quietly(lambda watched: provenance.training_ends(watched, averaged), self)

    class LastWitness(base):  # type: ignore[misc,valid-type]
        """After every callback of the notebook's: the weights must be as the first witness saw them."""

        def on_train_begin(self, logs: Any = None) -> None:
            _quietly(lambda watched: provenance.unchanged(watched, "as its fit began"), self)

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            _quietly(lambda watched: provenance.unchanged(watched, "as an epoch began"), self)

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if between_steps:
                _quietly(lambda watched: provenance.unchanged_since_step(watched, "before a training step"), self)

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if between_steps:
                _quietly(lambda watched: provenance.unchanged_since_step(watched, "after a training step"), self)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            _quietly(lambda watched: provenance.unchanged(watched, "at an epoch's end"), self)

        def on_train_end(self, logs: Any = None) -> None:
            _quietly(lambda watched: provenance.unchanged(watched, "at its fit's end"), self)

    first, last = WeightWitness(), LastWitness()
    first.set_model(model)
    last.set_model(model)
    return first, last


def _quietly(step: Callable[[Any], None], witness: Any) -> None:
    try:
        step(witness.model)  # Keras' ``Callback.model`` syncs a JAX model's state first
    except Exception:
        pass


def wrap_weight_changes(keras: Any, provenance: WeightProvenance) -> None:
    """Record each trainable weight as Keras creates it, ``set_weights``, ``load_weights`` and
    the notebook's own assignments to variables."""
    layer_class = keras.layers.Layer
    original_add = layer_class.add_weight

    def add_weight(layer: Any, *args: Any, **kwargs: Any) -> Any:
        variable = original_add(layer, *args, **kwargs)
        if getattr(variable, "trainable", False):
            with contextlib.suppress(Exception):
                provenance.created(variable)
        return variable

    add_weight.__wrapped__ = original_add  # type: ignore[attr-defined]
    layer_class.add_weight = add_weight
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
