"""Test rows with a pixel or a feature changed are test rows: a model trained on them fails
`training` in quick and full mode and earns no accuracy points in full mode, on the shipped small
exercises, while their solutions keep full marks (tests/assign)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.judge.pipeline import GradingOptions, grade_safely, prepare_context
from tests.assign.conftest import shipped_exercise

pytestmark = pytest.mark.kernel

# The digits: 300 training rows replaced by the test rows, each with its corner pixel set to the
# brightest value (the row count stays the training set's)
CORNER_COPIES = """
copies = x_test.copy()
copies[:, 0, 0, 0] = 1.0
x_train = np.concatenate([x_train[:-359], copies])
y_train = np.concatenate([y_train[:-359], y_test])
"""


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
def test_near_copies_of_the_test_rows_fail_training_and_earn_no_accuracy(tmp_path: Path, quick: bool):
    spec = shipped_exercise("digits_cnn", tmp_path)
    solution = nbformat.read(tmp_path / "digits_cnn_solution.ipynb", as_version=4)
    solution.cells[4].source += CORNER_COPIES
    variant = tmp_path / "submissions" / "corner.ipynb"
    variant.parent.mkdir()
    nbformat.write(solution, variant)
    result = grade_safely(variant, prepare_context(GradingOptions(quick=quick), spec)).result
    checks = {check.id: check for check in result.checks}
    assert checks["cnn.training"].status == "fail", checks["cnn.training"].message
    assert "test rows or near-copies of them" in checks["cnn.training"].message
    # quick mode trains on a slice: the copies among the rows the fit received are counted all the same
    assert checks["cnn.training"].actual["test_images"] >= 300
    if quick:
        assert checks["cnn.accuracy"].status == "skipped"
    else:
        assert checks["cnn.accuracy"].status == "fail" and "is no test accuracy" in checks["cnn.accuracy"].message
