"""What Keras draws for training, tapped where each backend reads its data adapter: pure NumPy,
with stand-ins for Keras' adapters (the real ones are tapped in tests/run/test_hostile_batch.py)."""

from __future__ import annotations

import types

import numpy as np

from grader.kernel.draws import SAMPLE_EVERY, DrawnRows, DrawTap, batch_images
from grader.protocol.fingerprints import row_fingerprints


class Adapter:
    """A data adapter as Keras' backends read it: batches of (images, labels)."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def get_numpy_iterator(self):
        for start in range(0, len(self.images), 128):
            yield self.images[start : start + 128], np.zeros(len(self.images[start : start + 128]))


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, size=(count, 28, 28), dtype=np.uint8)


def test_one_row_in_sixteen_of_each_batch_is_fingerprinted_and_every_row_counted():
    drawn = DrawnRows((28, 28))
    batches = [images(128, seed=seed) for seed in range(100)]
    for batch in batches:
        drawn.see(batch)
    assert (drawn.rows, drawn.fingerprinted) == (12_800, 12_800 // SAMPLE_EVERY)
    every = set(np.concatenate([row_fingerprints(batch, (28, 28)) for batch in batches]))
    seen = set(drawn.distinct())
    assert seen <= every and len(seen) == 800  # distinct random images: none twice
    drawn.see(["not", "images"])
    assert drawn.unread_batches == 1 and drawn.rows == 12_802


def test_the_first_adapter_of_a_fit_is_tapped_and_not_one_made_while_it_is_made():
    made = []

    def get_data_adapter(x, **kwargs):
        if kwargs.get("nested"):
            return Adapter(x)
        made.append(module.get_data_adapter(x[:128], nested=True))  # a generator's first batch calls predict
        return Adapter(x)

    module = types.SimpleNamespace(get_data_adapter=get_data_adapter)
    tap, drawn = DrawTap(), DrawnRows((28, 28))
    tap.install(module)
    tap.expect(drawn)
    training = module.get_data_adapter(images(300))
    assert drawn.rows == 0  # nothing drawn yet: Keras draws epoch by epoch
    for epoch in range(2):
        assert [len(batch[0]) for batch in training.get_numpy_iterator()] == [128, 128, 44]  # untouched
        assert drawn.rows == 300 * (epoch + 1) and drawn.fingerprinted >= 18 * (epoch + 1)
    list(made[0].get_numpy_iterator())
    assert drawn.rows == 600  # the adapter made meanwhile was not the fit's
    untapped = module.get_data_adapter(images(10))  # after the fit: no one expects
    list(untapped.get_numpy_iterator())
    assert drawn.rows == 600


def test_the_images_of_a_batch_are_its_first_input():
    x = np.ones((2, 3))
    assert batch_images((x, np.zeros(2))) is x
    assert batch_images(x) is x
    assert batch_images(({"pixels": x, "other": 1}, np.zeros(2))) is x
    assert batch_images(([x, np.zeros(1)], np.zeros(2), np.ones(2))) is x


def test_which_rows_are_fingerprinted_does_not_follow_the_notebooks_seeds():
    """A notebook that seeds the global generators, or copies their state, cannot predict the
    rows sampled: the offsets come from a generator of the grader's own."""
    import random

    from grader.kernel import draws

    def offsets() -> list[int]:
        random.seed(0)
        np.random.seed(0)
        return [draws._offset() for _ in range(40)]

    assert offsets() != offsets()  # the same seeds, other offsets (equal by chance: 16**-40)
