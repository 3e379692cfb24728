"""How the grader reads the evaluator's answers: the evaluator rebuilds untrusted models and is
held as untrusted as a kernel, so an answer it never finishes (half a line, then silence) or
never ends (a line without end) costs the worker a deadline, never a hang. Fake evaluators
(small scripts) run in the evaluator's own sandbox, without bubblewrap."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader.errors import GraderFault
from grader.evaluation import evaluate
from grader.evaluation.limits import RebuildBounds
from grader.run.isolation import Isolation, Limits
from grader.run.sandbox import EvaluatorSandbox
from grader.spec.exercise import ACCURACY

# Half of the canary's answer, then silence
HALF_A_LINE = """
import sys, time
sys.stdout.write('{"canary": {"metr')
sys.stdout.flush()
time.sleep(600)
"""
# An answer that never ends: 4 MiB without a newline, then silence
NO_END = """
import sys, time
sys.stdout.write("x" * 4 * 2**20)
sys.stdout.flush()
time.sleep(600)
"""
# The canary's answer in two pieces, then for a request an answer with a byte that is no UTF-8
ANSWERS = r"""
import sys, time
out = sys.stdout.buffer
sys.stdin.readline()
out.write(b'{"canary": {"metric": "accuracy", "test_va')
out.flush()
time.sleep(0.3)
out.write(b'lue": 0.5}}\n')
out.flush()
sys.stdin.readline()
out.write(b'{"evaluation": "\xff"}\n')
out.flush()
time.sleep(600)
"""


def start_fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str, seconds: int) -> SimpleNamespace:
    """Every evaluator started runs ``script`` in its place, in its sandbox, given ``seconds`` to
    answer; the recipe to start one with."""
    command = EvaluatorSandbox.command
    monkeypatch.setattr(
        EvaluatorSandbox, "command", lambda sandbox, _, before="": command(sandbox, [sys.executable, "-c", script])
    )
    monkeypatch.setattr(evaluate, "EVALUATOR_TIMEOUT_SECONDS", seconds)
    monkeypatch.setattr(evaluate._Evaluator, "_setup", lambda evaluator: {})
    data = tmp_path / "data.npz"
    data.write_bytes(b"")
    return SimpleNamespace(
        backend="jax", data_path=data, data=SimpleNamespace(metric=ACCURACY), bounds=RebuildBounds(784, 1000),
        isolation=Isolation(None, False, False, None, None), limits=Limits(), private_test=None,
    )  # fmt: skip


# pytest-timeout ends a reading that waits past its deadline (600 s for the answer without end)
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("script", "seconds", "reason"),
    [
        (HALF_A_LINE, 1, r"did not answer within 1 s as it started"),  # given up at its deadline
        (NO_END, 600, r"printed more than 1,048,576 bytes without ending its answer"),  # at its bound, long before
    ],
    ids=["half-a-line", "no-end"],
)
def test_an_evaluator_that_never_ends_its_answer_is_given_up_on(tmp_path, monkeypatch, script, seconds, reason):
    recipe = start_fake(monkeypatch, tmp_path, script, seconds=seconds)
    with pytest.raises(GraderFault, match=rf"the grader's evaluator {reason}"):
        evaluate._Evaluator(recipe)  # type: ignore[arg-type]


@pytest.mark.timeout(30)
def test_answers_are_read_whole_however_they_arrive_and_decoded_whatever_their_bytes(tmp_path, monkeypatch):
    recipe = start_fake(monkeypatch, tmp_path, ANSWERS, seconds=10)
    evaluator = evaluate._Evaluator(recipe)  # type: ignore[arg-type]
    try:
        assert evaluator.ask({"name": "model_1"}) == '{"evaluation": "\ufffd"}'
    finally:
        evaluator.stop()
    assert evaluator.process is not None and evaluator.process.poll() is not None
