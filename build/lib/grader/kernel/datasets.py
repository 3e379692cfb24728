"""Serve the grader's copy of the data set to ``keras.datasets.<name>.load_data()``,
so that notebooks run unchanged and offline."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

# Where Keras 3 (and its tf.keras face) keeps the data set modules.
DATASET_PACKAGES = ("keras.src.datasets", "keras.datasets", "keras.api.datasets", "keras._tf_keras.keras.datasets")


def serve_dataset(name: str, path: str) -> None:
    """Make every ``load_data()`` of the data set ``name`` return the arrays in ``path``."""

    def load_data(*args: Any, **kwargs: Any) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        with np.load(path, allow_pickle=False) as arrays:
            return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])

    for package in DATASET_PACKAGES:
        try:
            module = importlib.import_module(f"{package}.{name}")
        except ImportError:
            continue
        module.load_data = load_data  # type: ignore[attr-defined]
