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

from grader.errors import UntrustedDataError, fault_injected
from grader.judge.rebuild import build_model
from grader.judge.untrusted import read_array
from grader.spec.architecture import Architecture
from grader.spec.datasets import load_dataset, prepare_images
from grader.spec.exercise import DataSpec

TRAIN_SAMPLE_STEP = 6
# One weight array may hold a billion bytes: a 100,000-unit layer on 784 inputs is 314 MB.
MAX_WEIGHT_BYTES = 2**30


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
        try:
            array = read_array(Path(path), MAX_WEIGHT_BYTES)  # its header checked before its data is read
        except UntrustedDataError as error:
            raise ValueError(str(error)) from None
        if array.shape != shape or array.dtype.kind != "f":
            raise ValueError(f"a weight array has shape {array.shape} and dtype {array.dtype}, expected {shape} floats")
        weights.append(array)
    return weights


def _evaluate(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model: its evaluation, and a fault of the grader's (a file it could not read), if any."""
    if fault_injected("evaluator"):
        raise SystemExit("GRADER_INJECT_FAULT: the evaluator crashes")
    data = DataSpec(**{**request["data"], "image_shape": tuple(request["data"]["image_shape"])})
    dataset = load_dataset(Path(request["data_path"]), data)
    x_test = prepare_images(dataset.x_test, data)
    # Every TRAIN_SAMPLE_STEP-th training image: as many as the test images, to compare with.
    x_seen = prepare_images(dataset.x_train[::TRAIN_SAMPLE_STEP], data)
    y_seen = dataset.y_train[::TRAIN_SAMPLE_STEP]
    answers: dict[str, dict[str, Any]] = {}
    for entry in request["models"]:
        evaluation: dict[str, Any] = {"accuracy": None, "error": None, "train_accuracy": None}
        grader_fault = None
        try:
            architecture = Architecture.from_dict(entry["architecture"])
            model = build_model(architecture)
            assert architecture.input_shape is not None  # build_model refuses a model without one
            model.set_weights(_load_weights(entry["weights"], architecture))
            inputs = x_test.reshape(len(x_test), *architecture.input_shape)
            evaluation["accuracy"] = measured_accuracy(model, inputs, dataset.y_test)
            seen = x_seen.reshape(len(x_seen), *architecture.input_shape)
            evaluation["train_accuracy"] = measured_accuracy(model, seen, y_seen)
        except ValueError as error:  # what the kernel exported is malformed: the submission's doing
            evaluation["error"] = f"could not evaluate the model: {error}"
        except OSError as error:  # a file listed when the facts were read is unreadable now: the grader's
            grader_fault = f"{entry['name']}: {error}"
        answers[entry["name"]] = {"evaluation": evaluation, "grader_fault": grader_fault}
    return answers


if __name__ == "__main__":
    print(json.dumps(_evaluate(json.loads(sys.stdin.read()))))
