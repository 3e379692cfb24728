"""Measure each exported model's test accuracy in a process of the grader's own.

The parent (no TensorFlow) sends a JSON request to ``python -m grader.evaluate``
on stdin. The child rebuilds each model from its parsed architecture, loads
the exported weights as plain arrays (``allow_pickle=False``, shapes checked),
and computes the accuracy on the grader's test set itself. The student's
process is never asked for a number.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader.architecture import Architecture
from grader.facts import ModelFacts
from grader.spec import DataSpec

EVALUATOR_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Evaluation:
    accuracy: float | None
    error: str | None = None


def evaluate_models(models: list[ModelFacts], data_path: Path, data: DataSpec) -> dict[str, Evaluation]:
    """Test accuracy of each model whose architecture was read, by name."""
    requests: list[dict[str, Any]] = [
        {"name": m.name, "architecture": m.architecture.to_dict(), "weights": [str(p) for p in m.weights]}
        for m in models
        if m.architecture is not None
    ]
    if not requests:
        return {}
    request = {"data_path": str(data_path), "data": asdict(data), "models": requests}
    # Evaluation is 10,000 predictions: the CPU gives the same figures on every machine.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "grader.evaluate"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=EVALUATOR_TIMEOUT_SECONDS,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {r["name"]: Evaluation(None, "the grader's evaluation timed out") for r in requests}
    try:
        if completed.returncode != 0:
            raise ValueError((completed.stderr.strip().splitlines() or ["no output"])[-1])
        answers = json.loads(completed.stdout.strip().splitlines()[-1])
        return {str(r["name"]): Evaluation(**answers[r["name"]]) for r in requests}
    except (ValueError, IndexError, KeyError, TypeError) as error:
        return {str(r["name"]): Evaluation(None, f"the grader's evaluation failed: {error}") for r in requests}


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
    from grader.data import load_dataset, prepare_images
    from grader.keras_models import build_model

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
            predicted = np.argmax(model.predict(inputs, batch_size=1000, verbose=0), axis=1)
            accuracy = float(np.mean(predicted == dataset.y_test))
            answers[entry["name"]] = {"accuracy": round(accuracy, 6), "error": None}
        except (ValueError, OSError) as error:
            answers[entry["name"]] = {"accuracy": None, "error": f"could not evaluate the model: {error}"}
    return answers


if __name__ == "__main__":
    print(json.dumps(_evaluate(json.loads(sys.stdin.read()))))
