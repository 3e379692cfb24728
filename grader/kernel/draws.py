"""What Keras draws to train a model: the batches that reach its train step, on every pass and
epoch of every ``fit``, whatever ``fit`` was given (arrays, tensors, a ``tf.data`` pipeline, a
``keras.utils.PyDataset``, a generator). What a notebook shows of its data to whoever looks
(its ``shape``, a first pass) is not what counts: each batch is fingerprinted as Keras takes it.

Keras builds one data adapter per ``fit`` for its training data
(``keras.src.trainers.data_adapters.get_data_adapter``), before anything else of the fit reads
data, and every backend draws its batches from that adapter. The ``fit`` wrapper says which
model the next adapter trains (``expect``); the adapter is tapped where each backend reads it.
"""

from __future__ import annotations

import functools
import os
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from grader.protocol.fingerprints import row_fingerprints

# One row in SAMPLE_EVERY of each batch is fingerprinted, from an offset drawn per batch: a
# pass over the test set still shows over 600 of its images, and an epoch of MNIST costs a few
# hundredths of a second instead of a fifth.
SAMPLE_EVERY = 16
# Rows kept before they are fingerprinted together: one call per few thousand rows, not per batch
FINGERPRINT_AT = 4096
# The adapter methods each backend draws training batches through
ITERATING_METHODS = ("get_numpy_iterator", "get_jax_iterator", "get_torch_dataloader")


class DrawnRows:
    """The rows one model's training drew, over all its fits: how many, how many were
    fingerprinted, and their distinct fingerprints. Fed from Keras' data threads."""

    def __init__(self, image_shape: tuple[int, ...]) -> None:
        self.image_shape = image_shape
        self.rows = 0
        self.fingerprinted = 0
        # Batches whose images were not an array of numbers (strings, ragged or sparse tensors)
        self.unread_batches = 0
        self._kept: list[np.ndarray] = []
        self._kept_rows = 0
        self._fingerprints = np.zeros(0, dtype=np.uint64)
        self._lock = threading.Lock()

    def see(self, images: Any) -> None:
        """One batch's images, as Keras hands them to the train step."""
        try:
            rows = len(images)
        except TypeError:
            rows = 0
        self.take(_sample(images), rows)

    def take(self, sample: Any, rows: int) -> None:
        """``sample``, the rows chosen of a batch of ``rows`` rows."""
        with self._lock:
            self.rows += rows
        try:
            array = np.asarray(sample)
            if array.ndim < 2 or array.dtype.kind not in "biuf":
                raise TypeError(f"{array.dtype} of {array.ndim} dimensions")
        except Exception:  # not an array of images: counted, not fingerprinted
            with self._lock:
                self.unread_batches += 1
            return
        with self._lock:
            if self._kept and self._kept[0].shape[1:] != array.shape[1:]:
                self._fold()  # another fit, its images shaped otherwise
            self._kept.append(np.array(array))  # a copy: the batch's memory is Keras' to reuse
            self._kept_rows += len(array)
            self.fingerprinted += len(array)
            if self._kept_rows >= FINGERPRINT_AT:
                self._fold()

    def distinct(self) -> np.ndarray:
        """The distinct fingerprints of the rows seen so far, sorted."""
        with self._lock:
            self._fold()
            return self._fingerprints

    def _fold(self) -> None:
        """Fingerprint the rows kept, all at once, into the distinct fingerprints."""
        if self._kept:
            marks = row_fingerprints(np.concatenate(self._kept), self.image_shape)
            self._fingerprints = np.unique(np.concatenate([self._fingerprints, marks]))
            self._kept, self._kept_rows = [], 0


class DrawTap:
    """Taps the training data adapter of each recorded ``fit``."""

    def __init__(self) -> None:
        self._expected: DrawnRows | None = None

    def install(self, data_adapters: Any) -> None:
        """Wrap Keras' ``get_data_adapter`` (the module ``keras.src.trainers.data_adapters``)."""
        original = data_adapters.get_data_adapter

        def get_data_adapter(*args: Any, **kwargs: Any) -> Any:
            # Claimed before the adapter is made: an adapter made meanwhile (a generator's first
            # batch is read now, and may call predict) is not the fit's training data.
            drawn, self._expected = self._expected, None
            adapter = original(*args, **kwargs)
            if drawn is not None:
                tap_adapter(adapter, drawn)
            return adapter

        get_data_adapter.__wrapped__ = original  # type: ignore[attr-defined]
        data_adapters.get_data_adapter = get_data_adapter

    def expect(self, drawn: DrawnRows | None) -> None:
        """The next data adapter Keras makes is the training data of the model ``drawn`` counts
        for (None: of no recorded fit; said when the fit returns)."""
        self._expected = drawn


def tap_adapter(adapter: Any, drawn: DrawnRows) -> None:
    """Make every batch ``adapter`` yields, through whichever backend's method, pass ``drawn``."""
    for name in ITERATING_METHODS:
        method = getattr(adapter, name, None)
        if callable(method):
            setattr(adapter, name, functools.partial(_tapped_iterable, method, drawn))
    method = getattr(adapter, "get_tf_dataset", None)
    if callable(method):
        adapter.get_tf_dataset = functools.partial(_tapped_dataset, method, drawn)


def batch_images(batch: Any) -> Any:
    """The images of a batch as Keras unpacks it: ``(x, y[, sample_weight])`` or ``x``, and of
    several inputs the first."""
    x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    while isinstance(x, (tuple, list, dict)) and x:
        x = next(iter(x.values())) if isinstance(x, dict) else x[0]
    return x


def _with_images(batch: Any, images: Any) -> Any:
    """``batch`` with its images (``batch_images``) replaced by ``images``."""
    if isinstance(batch, (tuple, list)) and batch:
        return type(batch)([_with_images(batch[0], images), *batch[1:]])
    if isinstance(batch, dict) and batch:
        first = next(iter(batch))
        return {**batch, first: _with_images(batch[first], images)}
    return images


class _Tapped:
    """An iterable (a generator of batches, a torch ``DataLoader``) whose batches pass ``see``."""

    def __init__(self, inner: Iterable[Any], see: Callable[[Any], None]) -> None:
        self._inner = inner
        self._see = see

    def __iter__(self) -> Iterator[Any]:
        for batch in self._inner:
            self._see(batch_images(batch))
            yield batch

    def __len__(self) -> int:
        return len(self._inner)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# The offsets of the rows sampled: a generator of the grader's own, seeded from the system's
# entropy, so that a notebook that seeds or copies the global generators (``random.getstate()``,
# ``keras.utils.set_random_seed``) cannot tell which rows are fingerprinted and place test rows
# between them.
_OFFSETS = random.Random(os.urandom(32))
# A kernel forked from the zygote (``grader.kernel.zygote``) draws its own, not its siblings'.
os.register_at_fork(after_in_child=lambda: _OFFSETS.seed(os.urandom(32)))


def _offset() -> int:
    return _OFFSETS.randrange(SAMPLE_EVERY)


def _sample(images: Any) -> Any:
    """One row in ``SAMPLE_EVERY`` of ``images`` (any array-like), from a random offset."""
    try:
        return images[_offset() :: SAMPLE_EVERY]
    except Exception:  # not rows that can be sliced: handed on as they are, to be counted
        return images


def _tapped_iterable(method: Callable[[], Iterable[Any]], drawn: DrawnRows) -> _Tapped:
    return _Tapped(method(), drawn.see)


def _tapped_dataset(method: Callable[[], Any], drawn: DrawnRows) -> Any:
    """The adapter's ``tf.data.Dataset``, each element's images passed to ``drawn`` as the
    pipeline produces it (on every pass: a dataset is iterated anew each epoch)."""
    import tensorflow as tf

    def seen(sample: np.ndarray, rows: np.ndarray) -> np.bool_:
        drawn.take(sample, int(rows))
        return np.bool_(True)

    def tap(*parts: Any) -> Any:
        element = parts[0] if len(parts) == 1 else parts
        images = batch_images(element)
        if not isinstance(images, tf.Tensor) or images.dtype == tf.string:
            return element  # not images Keras can train on as numbers: nothing to fingerprint
        # Sampled in the pipeline: only the rows fingerprinted cross into Python.
        offset = tf.reshape(tf.numpy_function(lambda: np.int32(_offset()), [], tf.int32, stateful=True), [])
        done = tf.numpy_function(seen, [images[offset::SAMPLE_EVERY], tf.shape(images)[0]], tf.bool, stateful=True)
        with tf.control_dependencies([done]):
            return _with_images(element, tf.identity(images))

    # Prefetched after the tap, so that the tap runs ahead of the training steps, beside them.
    return method().map(tap).prefetch(tf.data.AUTOTUNE)
