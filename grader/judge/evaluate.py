"""Measure each exported model's test accuracy in a process of the grader's own.

The parent (no Keras) sends a JSON request per notebook to ``python -m grader.judge.evaluator``,
a process it keeps for the next notebooks. The child (``grader.judge.evaluator``) rebuilds each
model from its exported config, loads the exported weights as plain arrays (shapes checked),
and computes the accuracy on the grader's test set itself. The student's process is never
asked for a number.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grader.errors import FAULT_INJECTION_ENV, GraderFault
from grader.judge.facts import ModelFacts
from grader.spec.exercise import DataSpec

EVALUATOR_TIMEOUT_SECONDS = 600
# What the evaluator printed while it answered one request, kept to its last this many bytes.
MAX_LOG_BYTES = 2**20


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
    evaluator = _evaluator(backend)
    try:
        answer, printed = evaluator.ask(request)
    except GraderFault:
        _EVALUATORS.pop(evaluator.key, None)
        raise
    logs = {"evaluator.log": printed}
    try:
        answers = json.loads(answer)
        evaluations = {str(r["name"]): Evaluation(**answers[r["name"]]["evaluation"]) for r in requests}
        grader_faults = [
            str(answers[r["name"]]["grader_fault"]) for r in requests if answers[r["name"]]["grader_fault"]
        ]
    except (ValueError, IndexError, KeyError, TypeError) as error:
        _EVALUATORS.pop(evaluator.key, None)
        evaluator.stop()
        raise GraderFault(f"the grader's evaluator failed: {error}", logs) from None
    if grader_faults:
        raise GraderFault(f"the grader's evaluator could not read what it needed: {grader_faults[0]}", logs)
    return evaluations, printed


class _Evaluator:
    """An evaluator process that answers one request after another, what it prints kept in a
    log file of its own."""

    def __init__(self, key: tuple[str, str], backend: str) -> None:
        self.key = key
        self.log = tempfile.TemporaryFile()
        # Evaluation is 10,000 predictions: the CPU gives the same figures on every machine.
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
               "JAX_PLATFORMS": "cpu"}  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.judge.evaluator"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )

    def ask(self, request: dict[str, Any]) -> tuple[str, str]:
        """The answer to ``request`` and what the evaluator printed meanwhile; raises
        ``GraderFault`` (and stops the process) when it dies or does not answer in time."""
        assert self.process.stdin is not None and self.process.stdout is not None
        start = self.log.seek(0, os.SEEK_END)
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            ready = select.select([self.process.stdout], [], [], EVALUATOR_TIMEOUT_SECONDS)[0]
            answer = self.process.stdout.readline() if ready else None
        except (BrokenPipeError, OSError):
            answer = ""
        if answer == "":  # it closed its output: let it finish dying, for its last words and exit status
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        self.log.seek(start)
        printed = self.log.read()[-MAX_LOG_BYTES:].decode(errors="replace")
        if answer:
            return answer, printed
        self.stop()
        if answer is None:
            reason = f"did not finish within {EVALUATOR_TIMEOUT_SECONDS} s"
        else:
            reason = f"failed: it exited with {self.process.returncode}: {_last_line(printed)}"
        raise GraderFault(f"the grader's evaluator {reason}", {"evaluator.log": printed})

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.log):
            with contextlib.suppress(OSError):  # a pipe to a dead process may refuse its last flush
                if stream is not None:
                    stream.close()


# One evaluator per backend (and fault injected, for tests) in each process that grades.
_EVALUATORS: dict[tuple[str, str], _Evaluator] = {}


@atexit.register
def _stop_evaluators() -> None:
    while _EVALUATORS:
        _EVALUATORS.popitem()[1].stop()


def _evaluator(backend: str) -> _Evaluator:
    key = (backend, os.environ.get(FAULT_INJECTION_ENV, ""))
    found = _EVALUATORS.get(key)
    if found is not None and found.process.poll() is not None:  # it died since its last answer
        found.stop()
        found = None
    if found is None:
        found = _EVALUATORS[key] = _Evaluator(key, backend)
    return found


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
