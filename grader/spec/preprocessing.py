"""How images are prepared for a model: scaled and shifted, padded on every side, reshaped.
The spec states the exercise's way; the evaluator derives a notebook's own from what it
trained on (``grader.evaluation.preprocessing``) and feeds the test images the same way. Pure numpy.

A preparation is an affine map of the values: one shared by every value (``x / 255``,
``(x - 127.5) / 127.5``), or one per feature of a row of features, per channel of a colour
image (standardisation with the training rows' mean and standard deviation, a min-max scaler,
a per-channel mean and std), then the shared one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Feature maps a description names before it says "…"
DESCRIBED_FEATURES = 3


@dataclass(frozen=True)
class Preprocessing:
    scale: float
    offset: float
    # The shape of one prepared image (no batch axis), after padding.
    shape: tuple[int, ...]
    # Pixels added on every side of each image, and the value they hold once prepared.
    pad: int = 0
    pad_value: float = 0.0
    # One map per entry of the raw rows' last axis (a feature, or a colour image's channel):
    # ``x * feature_scale[j] + feature_offset[j]``, before the shared ``scale`` and ``offset``.
    feature_scale: tuple[float, ...] = ()
    feature_offset: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.feature_scale) != len(self.feature_offset):
            raise ValueError(
                f"a preparation has {len(self.feature_scale)} feature scales and {len(self.feature_offset)} "
                "offsets: give one of each per feature"
            )

    def apply(self, images: np.ndarray) -> np.ndarray:
        """``images`` (a batch of raw images) prepared, as float32."""
        prepared = images.astype("float32")
        if self.feature_scale:
            if images.shape[-1] != len(self.feature_scale):
                raise ValueError(
                    f"the preparation maps {len(self.feature_scale)} features, the rows have {images.shape[-1]} "
                    "on their last axis"
                )
            prepared = prepared * np.asarray(self.feature_scale, "float32") + np.asarray(self.feature_offset, "float32")
        prepared = prepared * np.float32(self.scale) + np.float32(self.offset)
        if self.pad:
            widths = [(0, 0), (self.pad, self.pad), (self.pad, self.pad)] + [(0, 0)] * (images.ndim - 3)
            prepared = np.pad(prepared, widths, constant_values=self.pad_value)
        return prepared.reshape(len(images), *self.shape)

    def undo(self, prepared: np.ndarray, raw_shape: tuple[int, ...]) -> np.ndarray | None:
        """The raw rows (of shape ``raw_shape`` each) that this preparation turns into
        ``prepared``, as float64; None where it cannot be undone (a scale of 0, other sizes)."""
        count = len(prepared)
        if self.scale == 0 or any(scale == 0 for scale in self.feature_scale):
            return None
        values = prepared.astype("float64")
        if self.pad:
            height, width = raw_shape[0] + 2 * self.pad, raw_shape[1] + 2 * self.pad
            if values[0].size != height * width * math.prod(raw_shape[2:]):
                return None
            planes = values.reshape(count, height, width, -1)
            values = planes[:, self.pad : height - self.pad, self.pad : width - self.pad]
        if values[0].size != math.prod(raw_shape):
            return None
        values = (values.reshape(count, -1) - self.offset) / self.scale
        if self.feature_scale:
            values = values.reshape(count, -1, len(self.feature_scale))
            values = (values - np.asarray(self.feature_offset)) / np.asarray(self.feature_scale)
        return np.asarray(values.reshape(count, *raw_shape))

    def describe(self) -> str:
        """E.g. ``x / 255, shaped (784,)``, ``(x - 127.5) / 127.5, padded by 2, shaped (32, 32, 1)`` or
        ``(x - center) / spread per feature of 30 ((14.1, 3.52), (19.3, 4.3), (91.9, 24.3), …), shaped (30,)``."""
        values = _affine_text(self.scale, self.offset)
        if self.feature_scale:
            pairs = [
                f"({-offset / scale:.6g}, {1 / scale:.6g})" if scale else f"(constant {offset:.6g})"
                for scale, offset in zip(self.feature_scale, self.feature_offset, strict=True)
            ]
            shown = ", ".join(pairs[:DESCRIBED_FEATURES]) + (", …" if len(pairs) > DESCRIBED_FEATURES else "")
            values = f"(x - center) / spread per feature of {len(pairs)} ({shown})" + (
                "" if values == "x" else f", then {values}"
            )
        padding = f", padded by {self.pad}" if self.pad else ""
        return f"{values}{padding}, shaped {self.shape}"


def _affine_text(scale: float, offset: float) -> str:
    """``x * scale + offset`` as a reader writes it: ``x / 255``, ``(x - 127.5) / 127.5``, ``x``."""
    if offset and scale:
        return f"(x - {-offset / scale:.6g}) / {1 / scale:.6g}"
    if scale and scale != 1:
        return f"x / {1 / scale:.6g}"
    return "x" + (f" + {offset:g}" if offset else "")
