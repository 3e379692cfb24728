"""Measure each exported model in a process of the grader's own, as untrusted as a kernel: the
exercise's metric (``grader.spec.exercise.Metric``: a classifier's accuracy, a regression's mean
absolute error).

The parent (no Keras) keeps one evaluator per worker, for its next notebooks: ``python -m
grader.evaluation.evaluator`` (``grader.evaluation.evaluator``) in a sandbox of its own
(``grader.run.sandbox.EvaluatorSandbox``: no network, a uid of its own, read-only mounts of the
data set and of its inbox, memory, process and time limits). For each model, the parent reads
what the kernel exported as hostile input and writes it, checked, into the evaluator's inbox;
the evaluator rebuilds the model through Keras' safe deserialisation within the allowlist and
bounds (``grader.evaluation.model_config.check_rebuildable``), loads the weights as plain arrays and
measures the metric on the grader's test set itself. The student's process is never asked
for a number, and the evaluator's answers are checked as the kernel's are.

Whose fault a failure is: every evaluator measures the exercise's own model first (the
canary). Whatever an evaluator whose canary passed fails on in a model (an error, a crash, a
time or memory limit) is that model's: its ``accuracy`` check errors, saying why. Only when a
fresh evaluator's canary fails too is it the grader's (``GraderFault``). An evaluator that
failed on a model is not trusted with the next one: it is replaced.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import FAULT_INJECTION_ENV, GraderFault, UntrustedDataError
from grader.evaluation.limits import (
    BYTES_PER_WEIGHT,
    INBOX_MARGIN,
    MAX_CONFIG_BYTES,
    MAX_WEIGHT_BYTES,
    SAMPLED_FITS,
    RebuildBounds,
)
from grader.evaluation.preprocessing import TrainingRows, checked_positions, notebook_preparation
from grader.evaluation.untrusted import read_array, read_json
from grader.protocol.fingerprints import MAX_SAMPLE_BYTES
from grader.run.isolation import Isolation, Limits
from grader.run.sandbox import EvaluatorSandbox
from grader.run.watchdog import Watchdog
from grader.spec.architecture import Architecture
from grader.spec.datasets import load_dataset, load_private_test
from grader.spec.exercise import ACCURACY, DataSpec, Metric

EVALUATOR_TIMEOUT_SECONDS = 600
# The longest answer line read from the evaluator (one is a few hundred bytes), and how much is read at a time
MAX_ANSWER_BYTES = 2**20
READ_BYTES = 2**16
# What the evaluator printed while it answered one request, kept to its last this many bytes.
MAX_LOG_BYTES = 2**20
# The evaluator's CPU time over all the notebooks it serves: each request has its own wall-clock limit.
EVALUATOR_CPU_SECONDS = 7 * 24 * 3600
# Characters kept of what the evaluator says
MAX_TEXT = 600


@dataclass(frozen=True)
class Evaluation:
    """The grader's own measurement of a model: the exercise's metric (``metric``, a
    ``Metric.key``: ``accuracy``, or a regression's ``mean_absolute_error``) on the test images
    (``test_value``) and on as many training images (``train_value``: a model far better on
    images it never saw was trained on them)."""

    test_value: float | None
    error: str | None = None
    train_value: float | None = None
    # How the test images were prepared for the model, and whether that was derived from what
    # the notebook trained on (else it is the exercise's own way).
    preprocessing: str | None = None
    preprocessing_derived: bool = True
    metric: str = ACCURACY.key
    # Test rows among the rows the notebook's fit received that the kernel drew at random, found
    # once the notebook's own preparation is undone: what fingerprints of prepared rows miss
    # when each feature is prepared its own way. None: not measured.
    sample_test_rows: int | None = None
    # Why the notebook's preparation could not be derived (which features, how far off)
    preprocessing_problem: str | None = None
    # How many rows of the fits were drawn at random (``sample_test_rows`` were found among them)
    sample_rows: int | None = None
    # The same of the fits' first rows, saved as they came: a count, not a sample
    leading_test_rows: int | None = None
    leading_rows: int | None = None
    # "private" where ``test_value`` was measured on a private test set, else "public"
    test_set: str = "public"
    # How many test rows and training rows ``test_value`` and ``train_value`` were measured on
    test_rows: int | None = None
    train_rows: int | None = None


@dataclass(frozen=True)
class ExportedModel:
    """What a kernel exported of one model, as the grader listed it, its files not yet read:
    its config, its weights, and the rows its last fits received (each with where they were in
    ``x``, when the kernel saved that), the last fit first."""

    name: str
    config_file: Path
    weights: tuple[Path, ...]
    samples: tuple[tuple[Path, Path | None], ...] = ()


@dataclass(frozen=True)
class EvaluatorRecipe:
    """Everything an evaluator starts with: the backend, the data set, the bounds of what it
    rebuilds, the canary (the exercise's own model) and its sandbox."""

    backend: str
    data_path: Path
    data: DataSpec
    bounds: RebuildBounds
    canary: Architecture
    isolation: Isolation
    limits: Limits
    # A private test set measured on instead of the data set's test rows (written into the
    # evaluator's inbox as it starts: no notebook's sandbox holds it)
    private_test: Path | None = None


def evaluate_models(models: list[ExportedModel], recipe: EvaluatorRecipe) -> tuple[dict[str, Evaluation], str]:
    """The evaluation of each model, by name, measured with Keras on ``recipe.backend``, and
    what the evaluators printed. Raises ``GraderFault`` only when an evaluator cannot measure
    the exercise's own model."""
    printed: list[str] = []
    evaluations = {model.name: _evaluate(model, recipe, printed) for model in models}
    return evaluations, "".join(printed)


# The data set's training rows for the near-copy search of quick mode, by file and spec
_TRAINING_ROWS: dict[tuple[Path, DataSpec], TrainingRows] = {}


def near_copies_without_a_model(
    models: list[ExportedModel], data_path: Path, data: DataSpec, train_fingerprints: np.ndarray
) -> dict[str, Evaluation]:
    """Quick mode measures no model, yet what each one's fits received is read all the same:
    the test rows, and near-copies of them, among the sampled rows once the notebook's own
    preparation is undone. With numpy alone, on the grader's side: nothing of the notebook's
    runs, and what it wrote is read as hostile input. A model whose sample cannot be read gets
    no evaluation: its fingerprints still count."""
    key = (data_path, data)
    if key not in _TRAINING_ROWS:  # kept for the worker's next notebooks
        _TRAINING_ROWS.clear()
        dataset = load_dataset(data_path, data)
        _TRAINING_ROWS[key] = TrainingRows(dataset.x_train, train_fingerprints, dataset.x_test)
    training = _TRAINING_ROWS[key]
    evaluations = {}
    for model in models:
        try:
            samples = [_sample(rows, positions) for rows, positions in model.samples]
        except (UntrustedDataError, ValueError, OSError):
            continue
        found = notebook_preparation(samples, training, data, None)
        evaluations[model.name] = Evaluation(
            None, metric=data.metric.key, sample_test_rows=found["test_rows"], sample_rows=found["rows"],
            leading_test_rows=found["leading_test_rows"], leading_rows=found["leading_rows"],
        )  # fmt: skip
    return evaluations


def _sample(rows_file: Path, positions_file: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    rows = read_array(rows_file, MAX_SAMPLE_BYTES).astype("float64")
    if positions_file is None:
        return rows, None
    return rows, checked_positions(read_array(positions_file, MAX_SAMPLE_BYTES), len(rows))


def _evaluate(model: ExportedModel, recipe: EvaluatorRecipe, printed: list[str]) -> Evaluation:
    evaluator = _evaluator(recipe, printed)
    metric = recipe.data.metric.key
    try:
        request = evaluator.receive(model)
    except UntrustedDataError as error:
        return Evaluation(None, f"could not evaluate the model: {error}", metric=metric)
    except OSError as error:  # listed when the facts were read, unreadable now: the grader's
        raise GraderFault(f"the grader could not read what {model.name}'s kernel exported: {error}") from None
    try:
        answer = evaluator.ask(request)
    except _Died as death:
        printed.append(death.printed)
        _discard(evaluator)
        _evaluator(recipe, printed)  # a fresh one measures the exercise's own model, or this is the grader's fault
        return Evaluation(
            None,
            f"the grader's evaluator {death.reason} on this model (and measures the exercise's own model, so the "
            "evaluator works)",
            metric=metric,
        )
    finally:
        evaluator.empty_inbox()
    printed.append(evaluator.printed)
    try:
        evaluation, grader_fault = _read_answer(answer, recipe.data.metric)
    except (ValueError, KeyError, TypeError) as error:
        _discard(evaluator)
        return Evaluation(
            None, f"the grader's evaluator answered for this model with what is no evaluation ({error})", metric=metric
        )
    if grader_fault is not None:
        _discard(evaluator)
        raise GraderFault(f"the grader's evaluator could not read what it needed: {grader_fault}", _logs(printed))
    if evaluation.error is not None:
        _discard(evaluator)  # one that failed on a model is not trusted with the next
    return evaluation


# More rows than any data set the grader measures on holds
MAX_COUNTED_ROWS = 10**9


def _count(value: object) -> int | None:
    """A count of rows the evaluator answered: a whole number, within bounds."""
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_COUNTED_ROWS:
        raise ValueError(f"a count of rows that is no count: {str(value)[:40]}")
    return value


def _read_answer(line: str, metric: Metric) -> tuple[Evaluation, str | None]:
    """An evaluation as the evaluator answered it, checked as untrusted data: it names the
    exercise's metric, and holds its measurements or an error."""
    answer = json.loads(line)
    raw, fault = answer["evaluation"], answer["grader_fault"]
    _check_metric(raw, metric)
    evaluation = Evaluation(
        test_value=_measurement(raw.get("test_value"), metric),
        error=_text(raw.get("error")),
        train_value=_measurement(raw.get("train_value"), metric),
        preprocessing=_text(raw.get("preprocessing")),
        preprocessing_derived=raw.get("preprocessing_derived", True) is True,
        metric=metric.key,
        sample_test_rows=_count(raw.get("sample_test_rows")),
        preprocessing_problem=_text(raw.get("preprocessing_problem")),
        test_rows=_count(raw.get("test_rows")),
        sample_rows=_count(raw.get("sample_rows")),
        leading_test_rows=_count(raw.get("leading_test_rows")),
        leading_rows=_count(raw.get("leading_rows")),
        test_set="private" if raw.get("test_set") == "private" else "public",
        train_rows=_count(raw.get("train_rows")),
    )
    if evaluation.test_value is None and evaluation.error is None:
        raise ValueError(f"neither a {metric.name} nor an error")
    return evaluation, _text(fault)


def _check_metric(answer: Any, metric: Metric) -> None:
    """``ValueError`` unless ``answer`` (an evaluation or the canary's) names ``metric``."""
    named = answer.get("metric") if isinstance(answer, dict) else None
    if named != metric.key:
        raise ValueError(f"a measurement of {str(named)[:40]} where the exercise's is {metric.key}")


# The largest mean absolute error taken as one: past it, the answer is no measurement.
MAX_ERROR = 1e12


def _measurement(value: Any, metric: Metric) -> float | None:
    """An accuracy (a share, 0 to 1) or an error (0 or more), as the metric is; ``ValueError``
    for anything else."""
    if value is None:
        return None
    highest = 1.0 if metric.higher_is_better else MAX_ERROR
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= highest:
        raise ValueError(f"a measured {metric.name} of {str(value)[:40]}")
    return float(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} where text was expected")
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"


def _logs(printed: list[str]) -> dict[str, str]:
    return {"evaluator.log": "".join(printed)[-MAX_LOG_BYTES:]}


class _Died(Exception):
    """The evaluator died, or did not answer in time; ``printed`` is what it printed meanwhile."""

    def __init__(self, reason: str, printed: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.printed = printed


class _Unanswered(Exception):
    """The evaluator, still running, gave no answer: too late, or too long."""


class _Evaluator:
    """An evaluator process in its sandbox, whose canary passed; what it prints goes to a log of
    its own. Raises ``GraderFault`` when it cannot start or measure the exercise's own model."""

    def __init__(self, recipe: EvaluatorRecipe) -> None:
        self.recipe = recipe
        self.printed = ""
        self._log = tempfile.TemporaryFile()
        self._open = ExitStack()
        self._scratch = Path(tempfile.mkdtemp(prefix="grader-"))
        self.process: subprocess.Popen[bytes] | None = None
        # What the evaluator printed after the last line answered (read, not yet an answer)
        self._unread = b""
        try:
            self._start()
            answer = self.ask({"setup": self._setup()})
            canary = json.loads(answer)["canary"]
        except _Died as death:
            self.stop()
            raise GraderFault(f"the grader's evaluator {death.reason} as it started", _logs([death.printed])) from None
        except BaseException:
            self.stop()
            raise
        measured = _canary_measurement(canary, self.recipe.data.metric)
        if measured is None:
            self.stop()
            why = str(canary.get("error") if isinstance(canary, dict) else canary)[:MAX_TEXT]
            raise GraderFault(f"the grader's evaluator cannot measure the exercise's own model ({why})", {})

    def _start(self) -> None:
        recipe = self.recipe
        # Evaluation is 10,000 predictions: the CPU gives the same figures on every machine.
        environment = {"KERAS_BACKEND": recipe.backend, "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
        if os.environ.get(FAULT_INJECTION_ENV):
            environment[FAULT_INJECTION_ENV] = os.environ[FAULT_INJECTION_ENV]
        # Its writable folder holds the inbox: room for the largest model it takes, whatever --write-limit says.
        private = recipe.private_test.stat().st_size * 4 if recipe.private_test else 0  # unpacked, as float
        limits = replace(recipe.limits, write_bytes=BYTES_PER_WEIGHT * recipe.bounds.weights + INBOX_MARGIN + private)
        sandbox = EvaluatorSandbox(
            recipe.isolation, limits, self._scratch, recipe.data_path, EVALUATOR_CPU_SECONDS, environment
        )
        self.sandbox = self._open.enter_context(sandbox)
        self._open.enter_context(self.sandbox.confined())
        self.process = subprocess.Popen(
            self.sandbox.command([sys.executable, "-m", "grader.evaluation.evaluator"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=self.sandbox.process_environment(),
        )
        self._open.enter_context(Watchdog(self.sandbox, lambda: [self.process.pid] if self.process else []))

    def _setup(self) -> dict[str, Any]:
        recipe = self.recipe
        data_path = self.sandbox.inside_data
        setup = {
            "data_path": data_path,
            "data": asdict(recipe.data),
            "bounds": recipe.bounds.to_dict(),
            "canary": recipe.canary.to_dict(),
        }
        if recipe.private_test is not None:
            rows, labels = load_private_test(recipe.private_test, recipe.data)
            _save(self.sandbox.inbox / "private_x_test.npy", rows)
            _save(self.sandbox.inbox / "private_y_test.npy", labels)
            inside = self.sandbox.inside_inbox
            setup["private_test"] = {"x_test": f"{inside}/private_x_test.npy", "y_test": f"{inside}/private_y_test.npy"}
        return setup

    def receive(self, model: ExportedModel) -> dict[str, Any]:
        """Write what ``model``'s kernel exported into the inbox, read as hostile input; the
        request that names it as the evaluator sees it. Raises ``UntrustedDataError`` for what
        cannot be read or is beyond bounds."""
        inbox, inside = self.sandbox.inbox, self.sandbox.inside_inbox
        size = sum(_size(path) for path in model.weights)
        limit = BYTES_PER_WEIGHT * self.recipe.bounds.weights
        if size > limit:
            raise UntrustedDataError(f"its weights take {size:,} bytes; the grader evaluates at most {limit:,}")
        _write(inbox / "config.json", json.dumps(read_json(model.config_file, MAX_CONFIG_BYTES)).encode())
        weights = []
        for index, path in enumerate(model.weights):
            name = f"w{index:03d}.npy"
            _save(inbox / name, read_array(path, MAX_WEIGHT_BYTES))
            weights.append(f"{inside}/{name}")
        samples = []
        # The rows of the last fits (the last first: how the model's inputs were prepared)
        for index, (rows, positions) in enumerate(model.samples[:SAMPLED_FITS]):
            _save(inbox / f"sample{index}.npy", read_array(rows, MAX_SAMPLE_BYTES))
            sample = {"rows": f"{inside}/sample{index}.npy", "positions": None}
            if positions is not None:
                _save(inbox / f"positions{index}.npy", read_array(positions, MAX_SAMPLE_BYTES))
                sample["positions"] = f"{inside}/positions{index}.npy"
            samples.append(sample)
        return {"name": model.name, "config": f"{inside}/config.json", "weights": weights, "samples": samples}

    def empty_inbox(self) -> None:
        if self.sandbox.inbox.is_dir():  # else the evaluator has stopped, its sandbox gone
            for path in self.sandbox.inbox.iterdir():
                path.unlink(missing_ok=True)

    def ask(self, request: dict[str, Any]) -> str:
        """The answer to ``request`` (what the evaluator printed meanwhile in ``printed``);
        raises ``_Died`` when it dies or does not answer in time."""
        assert self.process is not None and self.process.stdin is not None
        start = self._log.seek(0, os.SEEK_END)
        answer: str | None = None
        unanswered: str | None = None  # why no answer came while it ran
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
            answer = self._answer_line(time.monotonic() + EVALUATOR_TIMEOUT_SECONDS)
        except _Unanswered as why:
            unanswered = str(why)
        except OSError:  # a broken pipe: it is gone
            pass
        if answer is None and unanswered is None:  # it closed its output: let it finish dying, for its last words
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        self._log.seek(start)
        self.printed = self._log.read()[-MAX_LOG_BYTES:].decode(errors="replace")
        if answer is not None:
            return answer
        reason = unanswered or self._why_no_answer()
        self.stop()
        raise _Died(reason, self.printed)

    def _answer_line(self, deadline: float) -> str | None:
        """The next line the evaluator printed, decoded; None when it closed its output first.
        Read as the bytes come, never waiting past ``deadline``: an evaluator that prints half a
        line and stops must not hold the worker. ``_Unanswered`` when no line ends by then or
        within ``MAX_ANSWER_BYTES``."""
        assert self.process is not None and self.process.stdout is not None
        output = self.process.stdout.fileno()  # read directly: the file object's buffer is never used
        while (end := self._unread.find(b"\n")) < 0:
            if len(self._unread) > MAX_ANSWER_BYTES:
                raise _Unanswered(f"printed more than {MAX_ANSWER_BYTES:,} bytes without ending its answer")
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([output], [], [], left)[0]:
                raise _Unanswered(f"did not answer within {EVALUATOR_TIMEOUT_SECONDS} s")
            read = os.read(output, READ_BYTES)  # what is there, without waiting: select said so
            if not read:
                return None  # half an answer, then nothing: it died answering
            self._unread += read
        line, self._unread = self._unread[:end], self._unread[end + 1 :]
        if len(line) > MAX_ANSWER_BYTES:
            raise _Unanswered(f"printed more than {MAX_ANSWER_BYTES:,} bytes without ending its answer")
        return line.decode(errors="replace")

    def _why_no_answer(self) -> str:
        """Why an evaluator that closed its output gave no answer."""
        assert self.process is not None
        if self.sandbox.out_of_memory():
            return f"ran out of memory (its limit is {self.recipe.limits.memory_bytes / 2**30:g} GiB)"
        lines = self.printed.strip().splitlines() or ["no output"]
        return f"failed (it exited with {self.process.returncode}: {lines[-1][:MAX_TEXT]})"

    def stop(self) -> None:
        """End the process and remove its sandbox."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                with contextlib.suppress(OSError):  # a pipe to a dead process may refuse its last flush
                    if stream is not None:
                        stream.close()
        with contextlib.suppress(OSError):
            self._open.close()
        if not os.path.ismount(self._scratch / "writable"):  # else left, with its owner.json, for a sweep
            shutil.rmtree(self._scratch, ignore_errors=True)
        self._log.close()


def _canary_measurement(canary: Any, metric: Metric) -> float | None:
    """The canary's measurement of ``metric``, or None for anything else."""
    try:
        _check_metric(canary, metric)
        return _measurement(canary.get("test_value"), metric)
    except ValueError:
        return None


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def _write(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    path.chmod(0o644)  # the evaluator reads it as a uid of its own


def _save(path: Path, array: np.ndarray) -> None:
    np.save(path, array, allow_pickle=False)
    path.chmod(0o644)


# One evaluator per recipe (and fault injected, for tests) in each process that grades.
_EVALUATORS: dict[str, _Evaluator] = {}


@atexit.register
def _stop_evaluators() -> None:
    while _EVALUATORS:
        _EVALUATORS.popitem()[1].stop()


def _key(recipe: EvaluatorRecipe) -> str:
    return f"{recipe!r}|{os.environ.get(FAULT_INJECTION_ENV, '')}"


def _evaluator(recipe: EvaluatorRecipe, printed: list[str]) -> _Evaluator:
    """This process's evaluator for ``recipe``, started if it has none (or its last died)."""
    found = _EVALUATORS.get(_key(recipe))
    if found is not None and found.process is not None and found.process.poll() is not None:
        _discard(found)
        found = None
    if found is None:
        try:
            found = _EVALUATORS[_key(recipe)] = _Evaluator(recipe)
        except GraderFault as fault:
            raise GraderFault(str(fault), {**_logs(printed), **fault.logs}) from None
    return found


def _discard(evaluator: _Evaluator) -> None:
    if _EVALUATORS.get(_key(evaluator.recipe)) is evaluator:
        del _EVALUATORS[_key(evaluator.recipe)]
    evaluator.stop()


def preprocessing_warnings(evaluations: dict[str, Evaluation]) -> list[str]:
    """Models whose test images were prepared the exercise's way, for want of knowing the notebook's."""
    return [
        f"the grader could not tell how the notebook prepared the images {name} was trained on"
        + (f" ({evaluation.preprocessing_problem})" if evaluation.preprocessing_problem else "")
        + f"; it fed it the test images prepared the exercise's way ({evaluation.preprocessing})"
        for name, evaluation in evaluations.items()
        if evaluation.test_value is not None and not evaluation.preprocessing_derived
    ]
