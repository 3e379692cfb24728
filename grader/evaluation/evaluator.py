"""The evaluator process: rebuilds each exported model from its config through Keras' own
deserialisation, restricted to the grader's allowlist and bounds, loads its weights as plain
arrays, prepares the test images as the notebook prepared its training images, and measures
the model's accuracy (a regression's mean absolute error) on the test images and on as many
training images. Run as
``python -m grader.evaluation.evaluator`` by ``grader.evaluation.evaluate``, in a sandbox of its own, as
untrusted as a kernel: what it rebuilds comes from a student's kernel.

Its input is one JSON object per line, its output one answer per line:
- first ``{"setup": ...}``: the data set (read from the path it names), the bounds of what it
  rebuilds, and the canary, the exercise's own model; the answer is the canary's measurement
  (with seeded weights), ``{"metric": KEY, "test_value": VALUE}``, the metric by its
  ``Metric.key`` (``accuracy``, a regression's ``mean_absolute_error``), or why it could not be
  measured: the grader uses it to tell an evaluator that works from one that does not;
- then one request per model: its config, weights and training sample, files in the inbox
  the grader wrote; the answer is its evaluation (the metric's key, its ``test_value`` and
  ``train_value``, or an error), and a fault of the grader's (a file it could not read), if any.
It serves one worker's notebooks one after another: Keras and the data set load once.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import UntrustedDataError, fault_injected
from grader.evaluation.limits import MAX_CONFIG_BYTES, MAX_PRIVATE_TEST_BYTES, MAX_WEIGHT_BYTES, RebuildBounds
from grader.evaluation.preprocessing import TrainingRows, checked_positions, notebook_preparation
from grader.evaluation.rebuild import build_model, model_from_config
from grader.evaluation.untrusted import read_array, read_json
from grader.protocol.fingerprints import MAX_SAMPLE_BYTES, row_fingerprints
from grader.spec.architecture import Architecture
from grader.spec.datasets import load_dataset
from grader.spec.exercise import DataSpec

TRAIN_SAMPLE_STEP = 6
CANARY_SEED = 0


def measured_accuracy(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``images`` that ``model`` classifies as ``labels`` say, to 6 decimals: its
    highest output's class, or, for one output (a binary classifier), class 1 above 0.5 (a
    sigmoid's probability), or above 0 (a linear unit's logit, trained ``from_logits``)."""
    outputs = model.predict(images, batch_size=1000, verbose=0)
    if outputs.shape[-1] == 1:
        activation = getattr(getattr(model.layers[-1], "activation", None), "__name__", "")
        predicted = (outputs[:, 0] > (0.0 if activation == "linear" else 0.5)).astype(int)
    else:
        predicted = np.argmax(outputs, axis=1)
    return round(float(np.mean(predicted == labels.reshape(len(labels)))), 6)


def measured(model: Any, rows: np.ndarray, targets: np.ndarray, data: DataSpec) -> float:
    """The exercise's metric of ``model`` on ``rows``: a classifier's accuracy, or a
    regression's mean absolute error, to 6 decimals."""
    if data.task == "regression":
        predicted = model.predict(rows, batch_size=1000, verbose=0).reshape(len(targets), -1)[:, 0]
        return round(float(np.mean(np.abs(predicted.astype("float64") - targets.astype("float64")))), 6)
    return measured_accuracy(model, rows, targets)


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
    samples: list[dict[str, Any]], training: TrainingRows, data: DataSpec, input_shape: tuple[int, ...]
) -> dict[str, Any]:
    """``notebook_preparation`` of the samples the inbox holds."""
    loaded = []
    for sample in samples:
        rows = _untrusted(read_array, sample["rows"], MAX_SAMPLE_BYTES).astype("float64")
        positions = sample["positions"]
        read = None if positions is None else _untrusted(read_array, positions, MAX_SAMPLE_BYTES)
        loaded.append((rows, None if read is None else checked_positions(read, len(rows))))
    return notebook_preparation(loaded, training, data, input_shape)


class Evaluator:
    """The data set, its training rows' fingerprints and the bounds, from the setup request."""

    def __init__(self, setup: dict[str, Any]) -> None:
        # JSON's lists are the spec's tuples
        fields: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in setup["data"].items()
        }
        self.data = DataSpec(**fields)
        self.bounds = RebuildBounds(**setup["bounds"])
        self.dataset = load_dataset(Path(setup["data_path"]), self.data)
        # Near-copies are looked for among the test rows notebooks can reach: the data set's own.
        self.training = TrainingRows(
            self.dataset.x_train, row_fingerprints(self.dataset.x_train, self.data.image_shape), self.dataset.x_test
        )
        self.test_set = "public"
        if "private_test" in setup:  # measured on instead of the data set's own test rows
            private = setup["private_test"]
            self.dataset = replace(
                self.dataset,
                x_test=_untrusted(read_array, private["x_test"], MAX_PRIVATE_TEST_BYTES),
                y_test=_untrusted(read_array, private["y_test"], MAX_PRIVATE_TEST_BYTES),
            )
            self.test_set = "private"
        # Every TRAIN_SAMPLE_STEP-th training image: as many as the test images, to compare with.
        self.seen = self.dataset.x_train[::TRAIN_SAMPLE_STEP]
        self.seen_labels = self.dataset.y_train[::TRAIN_SAMPLE_STEP]

    def canary(self, architecture: dict[str, Any]) -> dict[str, Any]:
        """The exercise's own model, built with seeded weights and measured on the test images
        prepared the exercise's way: proof that this evaluator works."""
        import keras

        try:
            keras.utils.set_random_seed(CANARY_SEED)
            model = build_model(Architecture.from_dict(architecture))
            images = self.data.preprocessing.apply(self.dataset.x_test)
            measurement = measured(model, images, self.dataset.y_test, self.data)
            return {"metric": self.data.metric.key, "test_value": measurement}
        except Exception as error:
            return {"error": f"{type(error).__name__}: {error}"}

    def evaluate(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A model's evaluation, and a fault of the grader's (a file it could not read), if any.
        Whatever else goes wrong is the model's: the canary showed that this evaluator works."""
        if fault_injected("evaluator-model"):
            raise SystemExit("GRADER_INJECT_FAULT: the evaluator crashes on a model")
        evaluation: dict[str, Any] = {"metric": self.data.metric.key, "test_value": None, "error": None}
        grader_fault = None
        try:
            model = model_from_config(_untrusted(read_json, entry["config"], MAX_CONFIG_BYTES), self.bounds)
            model.set_weights(_load_weights(entry["weights"], [tuple(w.shape) for w in model.get_weights()]))
            input_shape = tuple(model.input_shape[1:])
            prepared = _preprocessing(entry["samples"], self.training, self.data, input_shape)
            preprocessing = prepared["preparation"]
            evaluation |= {
                "test_value": measured(model, preprocessing.apply(self.dataset.x_test), self.dataset.y_test, self.data),
                "train_value": measured(model, preprocessing.apply(self.seen), self.seen_labels, self.data),
                "preprocessing": preprocessing.describe(),
                "preprocessing_derived": prepared["derived"],
                "preprocessing_problem": prepared["problem"],
                "sample_test_rows": prepared["test_rows"],
                "sample_rows": prepared["rows"],
                "leading_test_rows": prepared["leading_test_rows"],
                "leading_rows": prepared["leading_rows"],
                "test_rows": len(self.dataset.x_test),
                "test_set": self.test_set,
                "train_rows": len(self.seen),
            }
        except (ValueError, UntrustedDataError) as error:  # what the kernel exported is malformed
            evaluation["error"] = f"could not evaluate the model: {error}"
        except OSError as error:  # a file the grader wrote for it is unreadable: the grader's
            grader_fault = f"{entry['name']}: {error}"
        except Exception as error:  # Keras failed on it: the model's, since the canary passed
            evaluation["error"] = f"Keras failed on the model: {type(error).__name__}: {str(error)[:500]}"
        return {"evaluation": evaluation, "grader_fault": grader_fault}


def serve() -> None:
    """Answer the setup, then each request line, until stdin closes (the grader's worker is
    gone). The answers keep stdout to themselves: whatever Keras or a library prints goes to
    stderr, the log."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    if fault_injected("evaluator"):
        raise SystemExit("GRADER_INJECT_FAULT: the evaluator crashes")
    setup = json.loads(sys.stdin.readline())["setup"]
    evaluator = Evaluator(setup)
    answers.write(json.dumps({"canary": evaluator.canary(setup["canary"])}) + "\n")
    for line in sys.stdin:
        answers.write(json.dumps(evaluator.evaluate(json.loads(line))) + "\n")
        keras = sys.modules.get("keras")
        if keras is not None:
            keras.backend.clear_session()  # the models of one notebook, gone before the next


if __name__ == "__main__":
    serve()
