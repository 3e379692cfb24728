"""How images are prepared for a model: scaled and shifted (``x * scale + offset``), padded
on every side, reshaped. The spec states the exercise's way; the evaluator derives a
notebook's own from what it trained on (``grader.judge.preprocessing``) and feeds the test
images the same way. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Preprocessing:
    scale: float
    offset: float
    # The shape of one prepared image (no batch axis), after padding.
    shape: tuple[int, ...]
    # Pixels added on every side of each image, and the value they hold once prepared.
    pad: int = 0
    pad_value: float = 0.0

    def apply(self, images: np.ndarray) -> np.ndarray:
        """``images`` (a batch of raw images) prepared, as float32."""
        prepared = images.astype("float32") * np.float32(self.scale) + np.float32(self.offset)
        if self.pad:
            widths = [(0, 0), (self.pad, self.pad), (self.pad, self.pad)] + [(0, 0)] * (images.ndim - 3)
            prepared = np.pad(prepared, widths, constant_values=self.pad_value)
        return prepared.reshape(len(images), *self.shape)

    def describe(self) -> str:
        """E.g. ``x / 255, shaped (784,)`` or ``(x - 127.5) / 127.5, padded by 2, shaped (32, 32, 1)``."""
        if self.offset and self.scale:
            center = -self.offset / self.scale
            values = f"(x - {center:.6g}) / {1 / self.scale:.6g}"
        elif self.scale and self.scale != 1:
            values = f"x / {1 / self.scale:.6g}"
        else:
            values = "x" + (f" + {self.offset:g}" if self.offset else "")
        padding = f", padded by {self.pad}" if self.pad else ""
        return f"{values}{padding}, shaped {self.shape}"
