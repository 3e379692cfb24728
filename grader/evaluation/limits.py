"""The limits the host side of the evaluation and the evaluator share, defined once: what
is read of a kernel's exports, what the evaluator's inbox holds and what it rebuilds."""

from __future__ import annotations

import math
from dataclasses import dataclass

# A model's exported config, read as JSON (the kernel's and the evaluator's inbox's)
MAX_CONFIG_BYTES = 4 * 2**20
# One weight array may hold a billion bytes: a 100,000-unit layer on 784 inputs is 314 MB.
MAX_WEIGHT_BYTES = 2**30
# Bytes per weight the inbox holds at most (float64 weights, the widest Keras exports), and
# room besides for a model's config and training sample
BYTES_PER_WEIGHT = 8
INBOX_MARGIN = 32 * 2**20
# The fits whose sampled rows the evaluator reads, the last ones
SAMPLED_FITS = 3
# The grader wrote these itself, from the private test set it checked
MAX_PRIVATE_TEST_BYTES = 2**32

# Weights the evaluator builds at most, whatever the exercise: 400 MB of float32, above the
# largest layer seen in real notebooks of the MNIST exercise (Dense(100000) on 784 inputs).
MAX_REBUILT_WEIGHTS = 100_000_000
# An input may hold this many times an image's values (padding 28x28 to 32x32 adds 31 %).
INPUT_GROWTH = 4


@dataclass(frozen=True)
class RebuildBounds:
    """The largest model the evaluator rebuilds for an exercise's data, checked on its config
    before Keras builds anything: the values of one input, and the weights in all."""

    input_values: int
    weights: int = MAX_REBUILT_WEIGHTS

    @classmethod
    def for_images(cls, image_shape: tuple[int, ...], largest_model: int = 0) -> RebuildBounds:
        """For images of ``image_shape``; an exercise whose models are larger than the default
        bound (``largest_model`` weights) gets ten times its largest."""
        return cls(INPUT_GROWTH * math.prod(image_shape), max(MAX_REBUILT_WEIGHTS, 10 * largest_model))

    def to_dict(self) -> dict[str, int]:
        return {"input_values": self.input_values, "weights": self.weights}
