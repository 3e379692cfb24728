"""Measure each exported model's test accuracy in a process of the grader's own.

The parent (no TensorFlow) sends a JSON request to ``python -m grader.judge.evaluator``
on stdin. The child (``grader.judge.evaluator``) rebuilds each model from its exported
config, loads the exported weights as plain arrays (shapes checked), and computes the
accuracy on the grader's test set itself. The student's
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

from grader.errors import GraderFault
from grader.judge.facts import ModelFacts
from grader.spec.exercise import DataSpec

EVALUATOR_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Evaluation:
    """The grader's own measurement of a model: its accuracy on the test images and on as many
    training images (a model far better on images it never saw was trained on them)."""

    accuracy: float | None
    error: str | None = None
    train_accuracy: float | None = None
    # How the test images were prepared for the model, and whether that was derived from what
    # the notebook trained on (else it is the exercise's own way).
    preprocessing: str | None = None
    preprocessing_derived: bool = True


def evaluate_models(
    models: list[ModelFacts], data_path: Path, data: DataSpec, backend: str
) -> tuple[dict[str, Evaluation], str]:
    """Test accuracy of each model whose architecture was read, by name, measured with Keras on
    ``backend``, and what the evaluator printed on stderr. Raises ``GraderFault`` when the
    evaluator itself fails: its crash is never the submission's fault (a malformed model is an
    ``Evaluation`` error)."""
    requests: list[dict[str, Any]] = [
        {
            "name": m.name,
            "config": str(m.config_file),
            "weights": [str(p) for p in m.weights],
            "sample": next((str(fit.sample) for fit in reversed(m.fits) if fit.sample is not None), None),
        }
        for m in models
        if m.architecture is not None and m.config_file is not None
    ]
    if not requests:
        return {}, ""
    request = {"data_path": str(data_path), "data": asdict(data), "models": requests}
    # Evaluation is 10,000 predictions: the CPU gives the same figures on every machine.
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           "JAX_PLATFORMS": "cpu"}  # fmt: skip
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "grader.judge.evaluator"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=EVALUATOR_TIMEOUT_SECONDS,
            env=env,
        )
    except subprocess.TimeoutExpired as expired:
        stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else ""
        raise GraderFault(
            f"the grader's evaluator did not finish within {EVALUATOR_TIMEOUT_SECONDS} s", {"evaluator.log": stderr}
        ) from None
    logs = {"evaluator.log": completed.stderr}
    try:
        if completed.returncode != 0:
            raise ValueError(f"it exited with {completed.returncode}: {_last_line(completed.stderr)}")
        answers = json.loads(completed.stdout.strip().splitlines()[-1])
        evaluations = {str(r["name"]): Evaluation(**answers[r["name"]]["evaluation"]) for r in requests}
        grader_faults = [
            str(answers[r["name"]]["grader_fault"]) for r in requests if answers[r["name"]]["grader_fault"]
        ]
    except (ValueError, IndexError, KeyError, TypeError) as error:
        raise GraderFault(f"the grader's evaluator failed: {error}", logs) from None
    if grader_faults:
        raise GraderFault(f"the grader's evaluator could not read what it needed: {grader_faults[0]}", logs)
    return evaluations, completed.stderr


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["no output"])[-1]


def preprocessing_warnings(evaluations: dict[str, Evaluation]) -> list[str]:
    """Models whose test images were prepared the exercise's way, for want of knowing the notebook's."""
    return [
        f"the grader could not tell how the notebook prepared the images {name} was trained on; it fed it the "
        f"test images prepared the exercise's way ({evaluation.preprocessing})"
        for name, evaluation in evaluations.items()
        if evaluation.accuracy is not None and not evaluation.preprocessing_derived
    ]
