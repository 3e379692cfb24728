"""A private test set: rows no notebook's sandbox holds, on which the evaluator measures each
model instead of the data set's own test rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.errors import DataError
from grader.judge.pipeline import GradingOptions, grade_safely, prepare_context
from grader.spec.datasets import load_private_test
from grader.spec.exercise import load_spec
from tests.assign.conftest import shipped_exercise


def test_a_private_test_set_is_checked_against_the_data_set_s_rows(tmp_path: Path):
    spec = load_spec(shipped_exercise("digits_cnn", tmp_path))
    np.savez(tmp_path / "wrong.npz", x_test=np.zeros((5, 28, 28)), y_test=np.zeros(5))
    with pytest.raises(DataError, match=r"x_test has shape \(5, 28, 28\).*rows of shape \(8, 8\)"):
        load_private_test(tmp_path / "wrong.npz", spec.data)
    np.savez(tmp_path / "no_labels.npz", x_test=np.zeros((5, 8, 8)))
    with pytest.raises(DataError, match="needs x_test and y_test"):
        load_private_test(tmp_path / "no_labels.npz", spec.data)


def test_the_spec_names_its_private_test_set_beside_it(tmp_path: Path):
    path = shipped_exercise("digits_cnn", tmp_path)
    text = path.read_text().replace('file = "digits.npz"', 'file = "digits.npz"\nprivate_test = "held_back.npz"')
    path.write_text(text)
    assert load_spec(path).data.private_test == str(tmp_path / "held_back.npz")
    path.write_text(text.replace('"held_back.npz"', '"../elsewhere.npz"'))
    with pytest.raises(Exception, match="name a file in the spec's own folder"):
        load_spec(path)


@pytest.mark.kernel
@pytest.mark.slow  # 26 s: a full grade; the default run grades the digits in full mode in test_near_copies.py
def test_the_evaluator_measures_on_the_private_test_set_and_says_so(tmp_path: Path):
    """The digits solution, graded in full mode against a private set whose labels are the
    test rows' moved by one: its accuracy there is near 0, the public test rows' near 1."""
    spec = shipped_exercise("digits_cnn", tmp_path)
    with np.load(tmp_path / "digits.npz") as data:
        np.savez(tmp_path / "held_back.npz", x_test=data["x_test"], y_test=(data["y_test"] + 1) % 10)
    options = GradingOptions(quick=False, private_test=tmp_path / "held_back.npz")
    result = grade_safely(tmp_path / "digits_cnn_solution.ipynb", prepare_context(options, spec)).result
    accuracy = next(check for check in result.checks if check.id == "cnn.accuracy")
    assert accuracy.status == "fail" and accuracy.actual < 0.2
    assert "measured by the grader on the private test set" in accuracy.message
    assert result.models["cnn"].test_value == accuracy.actual
