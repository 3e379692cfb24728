"""Measure each exported model's test accuracy in a process of the grader's own.

The parent (no TensorFlow) sends a JSON request to ``python -m grader.judge.evaluator``
on stdin. The child (``grader.judge.evaluator``) rebuilds each model from its parsed architecture, loads
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

from grader.judge.facts import ModelFacts
from grader.spec.exercise import DataSpec

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
            [sys.executable, "-m", "grader.judge.evaluator"],
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
