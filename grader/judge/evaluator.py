"""The evaluator process: rebuilds each exported model from its config through Keras' own
deserialisation, restricted to the grader's allowlist, loads its weights as plain arrays,
prepares the test images as the notebook prepared its training images, and measures the
model's accuracy. Run as ``python -m grader.judge.evaluator`` by ``grader.judge.evaluate``:
one JSON request per line on stdin, one answer per line on stdout, for as long as the grader
keeps it (it never runs a student's code, so one process serves every notebook of a worker,
and Keras and the data set are loaded once). Imports Keras.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import UntrustedDataError, fault_injected
from grader.judge.preprocessing import derive_preprocessing
from grader.judge.rebuild import model_from_config
from grader.judge.untrusted import read_array, read_json
from grader.protocol.fingerprints import row_fingerprints
from grader.spec.datasets import Dataset, load_dataset
from grader.spec.exercise import DataSpec
from grader.spec.preprocessing import Preprocessing

TRAIN_SAMPLE_STEP = 6
# One weight array may hold a billion bytes: a 100,000-unit layer on 784 inputs is 314 MB.
MAX_WEIGHT_BYTES = 2**30
MAX_CONFIG_BYTES = 4 * 2**20
MAX_SAMPLE_BYTES = 4 * 2**20


def measured_accuracy(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``images`` that ``model`` classifies as ``labels`` say, to 6 decimals."""
    predicted = np.argmax(model.predict(images, batch_size=1000, verbose=0), axis=1)
    return round(float(np.mean(predicted == labels)), 6)


def _untrusted(read: Any, path: str, limit: int) -> Any:
    """``read(path, limit)``, its refusal a ``ValueError``: what the kernel wrote is malformed."""
    try:
        return read(Path(path), limit)
    except UntrustedDataError as error:
        raise ValueError(str(error)) from None


def _load_weights(paths: list[str], expected: list[tuple[int, ...]]) -> list[np.ndarray]:
    if len(paths) != len(expected):
        raise ValueError(f"{len(paths)} weight arrays were exported, the model needs {len(expected)}")
    weights = []
    for path, shape in zip(paths, expected, strict=True):
        array = _untrusted(read_array, path, MAX_WEIGHT_BYTES)  # its header checked before its data is read
        if array.shape != shape or array.dtype.kind != "f":
            raise ValueError(f"a weight array has shape {array.shape} and dtype {array.dtype}, expected {shape} floats")
        weights.append(array)
    return weights


def _preprocessing(
    sample_path: str | None, dataset: Dataset, fingerprints: np.ndarray, data: DataSpec, input_shape: tuple[int, ...]
) -> tuple[Preprocessing, bool]:
    """How to prepare images for the model: as derived from what it trained on, else the
    exercise's own (reshaped to the model's input if that is all that differs), and whether
    it was derived."""
    if sample_path is not None:
        sample = _untrusted(read_array, sample_path, MAX_SAMPLE_BYTES).astype("float64")
        derived = derive_preprocessing(sample, dataset.x_train, fingerprints)
        if derived is not None and derived.shape == input_shape:
            return derived, True
    exercise = data.preprocessing
    if int(np.prod(exercise.shape)) == int(np.prod(input_shape)):
        exercise = Preprocessing(exercise.scale, exercise.offset, input_shape, exercise.pad, exercise.pad_value)
    return exercise, False


@functools.cache
def _dataset(path: str, data: DataSpec) -> tuple[Dataset, np.ndarray]:
    """The data set and its training rows' fingerprints, loaded once per path and spec."""
    dataset = load_dataset(Path(path), data)
    return dataset, row_fingerprints(dataset.x_train, data.image_shape)


def _evaluate(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per model: its evaluation, and a fault of the grader's (a file it could not read), if any."""
    if fault_injected("evaluator"):
        raise SystemExit("GRADER_INJECT_FAULT: the evaluator crashes")
    data = DataSpec(**{**request["data"], "image_shape": tuple(request["data"]["image_shape"])})
    dataset, fingerprints = _dataset(request["data_path"], data)
    # Every TRAIN_SAMPLE_STEP-th training image: as many as the test images, to compare with.
    seen, seen_labels = dataset.x_train[::TRAIN_SAMPLE_STEP], dataset.y_train[::TRAIN_SAMPLE_STEP]
    answers: dict[str, dict[str, Any]] = {}
    for entry in request["models"]:
        evaluation: dict[str, Any] = {"accuracy": None, "error": None}
        grader_fault = None
        try:
            model = model_from_config(_untrusted(read_json, entry["config"], MAX_CONFIG_BYTES))
            model.set_weights(_load_weights(entry["weights"], [tuple(w.shape) for w in model.get_weights()]))
            input_shape = tuple(model.input_shape[1:])
            preprocessing, derived = _preprocessing(entry["sample"], dataset, fingerprints, data, input_shape)
            evaluation |= {
                "accuracy": measured_accuracy(model, preprocessing.apply(dataset.x_test), dataset.y_test),
                "train_accuracy": measured_accuracy(model, preprocessing.apply(seen), seen_labels),
                "preprocessing": preprocessing.describe(),
                "preprocessing_derived": derived,
            }
        except ValueError as error:  # what the kernel exported is malformed: the submission's doing
            evaluation["error"] = f"could not evaluate the model: {error}"
        except OSError as error:  # a file listed when the facts were read is unreadable now: the grader's
            grader_fault = f"{entry['name']}: {error}"
        answers[entry["name"]] = {"evaluation": evaluation, "grader_fault": grader_fault}
    return answers


def serve() -> None:
    """Answer each request line until stdin closes (the grader's worker is gone). The answers
    keep stdout to themselves: whatever Keras or a library prints goes to stderr, the log."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for line in sys.stdin:
        answers.write(json.dumps(_evaluate(json.loads(line))) + "\n")
        keras = sys.modules.get("keras")
        if keras is not None:
            keras.backend.clear_session()  # the models of one notebook, gone before the next


if __name__ == "__main__":
    serve()
