"""The evaluator process: rebuilds each exported model from its parsed architecture, loads
its weights as plain arrays and measures its test accuracy. Run as
``python -m grader.judge.evaluator`` by ``grader.judge.evaluate``, with a JSON request on
stdin; it never runs a student's code. Imports TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from grader.judge.rebuild import build_model
from grader.spec.architecture import Architecture
from grader.spec.datasets import load_dataset, prepare_images
from grader.spec.exercise import DataSpec


def measured_accuracy(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``images`` that ``model`` classifies as ``labels`` say, to 6 decimals."""
    predicted = np.argmax(model.predict(images, batch_size=1000, verbose=0), axis=1)
    return round(float(np.mean(predicted == labels)), 6)


def _load_weights(paths: list[str], architecture: Architecture) -> list[np.ndarray]:
    expected = architecture.weight_shapes()
    if len(paths) != len(expected):
        raise ValueError(f"{len(paths)} weight arrays were exported, the architecture needs {len(expected)}")
    weights = []
    for path, shape in zip(paths, expected, strict=True):
        # Memory-mapped: a forged, huge file is refused by its header, never read whole.
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if array.shape != shape or array.dtype.kind != "f":
            raise ValueError(f"a weight array has shape {array.shape} and dtype {array.dtype}, expected {shape} floats")
        weights.append(np.array(array))
    return weights


def _evaluate(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    data = DataSpec(**{**request["data"], "image_shape": tuple(request["data"]["image_shape"])})
    dataset = load_dataset(Path(request["data_path"]), data)
    x_test = prepare_images(dataset.x_test, data)
    answers: dict[str, dict[str, Any]] = {}
    for entry in request["models"]:
        try:
            architecture = Architecture.from_dict(entry["architecture"])
            model = build_model(architecture)
            assert architecture.input_shape is not None  # build_model refuses a model without one
            model.set_weights(_load_weights(entry["weights"], architecture))
            inputs = x_test.reshape(len(x_test), *architecture.input_shape)
            answers[entry["name"]] = {"accuracy": measured_accuracy(model, inputs, dataset.y_test), "error": None}
        except (ValueError, OSError) as error:
            answers[entry["name"]] = {"accuracy": None, "error": f"could not evaluate the model: {error}"}
    return answers


if __name__ == "__main__":
    print(json.dumps(_evaluate(json.loads(sys.stdin.read()))))
