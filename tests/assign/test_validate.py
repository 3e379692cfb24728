"""What `grader validate` holds an exercise to, with the grading swapped for results made by
hand: no kernel."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from grader.assign.validate import Finding, handout_finding, solution_finding, validate_exercise
from grader.judge.checks import CheckResult
from grader.judge.results import Graded, SubmissionResult
from grader.run.backends import Backend
from grader.spec.datasets import write_keras_layout
from grader.spec.exercise import load_spec

TENSORFLOW = Backend("tensorflow")
REFERENCE = Path(__file__).resolve().parents[2] / "reference"


def check(check_id: str, status: str, points: float, max_points: float, message: str = "") -> CheckResult:
    return CheckResult(check_id, status, None, None, message, points, max_points)  # type: ignore[arg-type]


def result(*checks: CheckResult, status: str = "graded") -> SubmissionResult:
    score = sum(each.points for each in checks)
    return SubmissionResult("s", "s.ipynb", status, score, sum(each.max_points for each in checks), checks)  # type: ignore[arg-type]


def test_the_solution_must_grade_full_marks():
    full = result(check("cnn.architecture", "pass", 2, 2), check("cnn.accuracy", "pass", 3, 3))
    assert solution_finding(full) == Finding("solution", True, "full marks in full mode (5 of 5)")
    short = result(check("cnn.architecture", "pass", 2, 2), check("cnn.accuracy", "fail", 0, 3, "0.91, below"))
    assert solution_finding(short) == Finding("solution", False, "2 of 5; cnn.accuracy: 0.91, below")
    timed_out = SubmissionResult("s", "s.ipynb", "timeout", 0.0, 5.0, (), error="the time limit of 60 s")
    assert (
        not solution_finding(timed_out).passed
        and "(timeout): the time limit of 60 s" in solution_finding(timed_out).detail
    )


def test_the_handout_must_score_nothing_and_each_failing_check_say_what_to_build():
    spec = load_spec(REFERENCE / "mnist_mlp_open.toml")  # model_3: an improvement, under any name
    empty = result(
        check("model_1.architecture", "error", 0, 2, "No Keras model named model_1 was found"),
        check("model_1.accuracy", "skipped", 0, 3, "Quick mode trains for one epoch"),
        check("model_3.training", "error", 0, 1, "No improvement was found. Build and train your improvement"),
    )
    assert handout_finding(empty, spec).passed and "2 checks fail" in handout_finding(empty, spec).detail
    gives = result(check("model_1.architecture", "pass", 2, 2, "ok"))
    assert handout_finding(gives, spec) == Finding("handout", False, "model_1.architecture gives 2")
    mute = result(
        check("model_2.training", "fail", 0, 1, "was never trained"), check("model_3.params", "error", 0, 1, "model_3?")
    )
    assert handout_finding(mute, spec) == Finding(
        "handout",
        False,
        "model_2.training fails without saying what to build; model_3.params fails without saying what to build",
    )
    assert not handout_finding(result(status="timeout"), spec).passed


def exercise(tmp_path: Path, calibrated: bool = False) -> Path:
    """The digits spec, with a small data file in Keras' layout whose hash it states."""
    reference = REFERENCE
    names = ["digits_cnn.toml", "digits_cnn_solution.ipynb", "digits_cnn_handout.ipynb"]
    for name in names + (["digits_cnn.calibration.json"] if calibrated else []):
        shutil.copy(reference / name, tmp_path)
    images, labels = np.zeros((10, 8, 8), "uint8"), np.arange(10, dtype="uint8")
    arrays = {"x_train": images[:6], "y_train": labels[:6], "x_test": images[6:], "y_test": labels[6:]}
    digest = write_keras_layout(tmp_path / "digits.npz", arrays)
    text = (tmp_path / "digits_cnn.toml").read_text()
    text = text.replace("train_samples = 1438", "train_samples = 6").replace("test_samples = 359", "test_samples = 4")
    start = text.index('file_sha256 = "') + len('file_sha256 = "')
    (tmp_path / "digits_cnn.toml").write_text(text[:start] + digest + text[start + 64 :])
    return tmp_path / "digits_cnn.toml"


def test_a_calibrated_exercise_grades_its_solution_in_full_mode_then_its_handout_in_quick_mode(tmp_path):
    graded: list[tuple[str, bool]] = []

    def grade(path, context):
        graded.append((path.name, context.options.quick))
        if context.options.quick:
            return Graded(result(check("cnn.architecture", "error", 0, 2, "no model cnn")))
        return Graded(result(check("cnn.architecture", "pass", 2, 2)))

    findings = validate_exercise(exercise(tmp_path, calibrated=True), TENSORFLOW, grade=grade)
    assert all(finding.passed for finding in findings), findings
    assert [finding.what for finding in findings] == ["data", "calibration", "solution", "handout"]
    assert graded == [("digits_cnn_solution.ipynb", False), ("digits_cnn_handout.ipynb", True)]


def test_without_a_calibration_the_solution_is_not_graded_and_the_handout_is(tmp_path):
    graded: list[tuple[str, bool]] = []

    def grade(path, context):
        graded.append((path.name, context.options.quick))
        return Graded(result(check("cnn.architecture", "error", 0, 2, "no model cnn")))

    findings = validate_exercise(exercise(tmp_path), TENSORFLOW, grade=grade)
    assert [(finding.what, finding.passed) for finding in findings] == [
        ("data", True), ("calibration", False), ("handout", True),
    ]  # fmt: skip
    assert "sha256 as the spec says" in findings[0].detail and "grader calibrate" in findings[1].detail
    assert graded == [("digits_cnn_handout.ipynb", True)]


def test_a_data_file_that_is_not_the_calibrated_one_stops_validation_first(tmp_path):
    spec = exercise(tmp_path)
    (tmp_path / "digits.npz").write_bytes(b"another file")
    (finding,) = validate_exercise(spec, TENSORFLOW, grade=lambda path, context: None)  # type: ignore[arg-type,return-value]
    assert (
        finding.what == "data"
        and not finding.passed
        and "is not the file the exercise was calibrated on" in finding.detail
    )
