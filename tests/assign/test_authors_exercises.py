"""The five exercises written as other authors write them (reference/): preparation per feature
or per channel, validation kept from the training rows, classes counted from 1, a Normalization
layer, a split by hand. A wrong variant of each loses the check its mistake names; a student who
prepares the data another right way grades full marks."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.judge.pipeline import GradingOptions, grade_safely, prepare_context
from tests.assign.conftest import shipped_exercise

pytestmark = pytest.mark.kernel

RIGHT = {"architecture": "pass", "params": "pass", "optimizer": "pass", "training": "pass"}


def graded_variant(
    stem: str, replacements: list[tuple[str, str]], tmp_path: Path, quick: bool = True
) -> dict[str, tuple[str, str]]:
    """Each check's kind (``architecture``, ...) and its status and message, for the exercise's
    solution with ``replacements`` made in its code cells."""
    spec = shipped_exercise(stem, tmp_path)
    solution = nbformat.read(tmp_path / f"{stem}_solution.ipynb", as_version=4)
    for old, new in replacements:
        cell = next((cell for cell in solution.cells if cell.cell_type == "code" and old in cell.source), None)
        assert cell is not None, f"{old!r} is not in {stem}'s solution"
        cell.source = cell.source.replace(old, new)
    variant = tmp_path / "submissions" / "variant.ipynb"
    variant.parent.mkdir()
    nbformat.write(solution, variant)
    result = grade_safely(variant, prepare_context(GradingOptions(quick=quick), spec)).result
    assert result.status == "graded", result.error
    return {check.id.split(".", 1)[1]: (check.status, check.message) for check in result.checks}


def test_a_student_who_scales_another_way_with_integer_labels_grades_full_marks(tmp_path):
    """The wine exercise (StandardScaler, cultivars 1-3 one-hot, validation_split=0.2): a student
    who standardises in numpy with pandas' deviation (ddof=1), keeps the classes as integers with
    the sparse loss and holds out a fifth of the rows by hand, graded in full mode. (Dividing by
    each feature's maximum instead is derived as well, and honestly measured: 0.78, too low.)"""
    by_hand = (
        "mean, spread = x_train.mean(axis=0), x_train.std(axis=0, ddof=1)\n"
        "x_train, x_test = (x_train - mean) / spread, (x_test - mean) / spread\n"
        "y_train, y_test = y_train - 1, y_test - 1\n"
        "x_train, x_val, y_train, y_val = x_train[:-29], x_train[-29:], y_train[:-29], y_train[-29:]"
    )
    verdicts = graded_variant(
        "wine",
        [
            (
                "scaler = StandardScaler()\nx_train = scaler.fit_transform(x_train)\nx_test = scaler.transform(x_test)",
                "",
            ),
            ("y_train = keras.utils.to_categorical(y_train - 1, num_classes=3)", by_hand),
            ("y_test = keras.utils.to_categorical(y_test - 1, num_classes=3)", ""),
            ('loss="categorical_crossentropy"', 'loss="sparse_categorical_crossentropy"'),
            ("validation_split=0.2", "validation_data=(x_val, y_val)"),
        ],
        tmp_path,
        quick=False,
    )
    assert {kind: status for kind, (status, _) in verdicts.items()} == {**RIGHT, "accuracy": "pass"}, verdicts


@pytest.mark.slow  # five kernels: one wrong variant runs by default above, in full mode
@pytest.mark.parametrize(
    ("stem", "replacements", "failing", "said"),
    [
        # per-channel normalisation: a convolution of 12 filters for 8
        ("colour_blobs", [("layers.Conv2D(8,", "layers.Conv2D(12,")], {"architecture", "params"}, "Conv2D(8"),
        # StandardScaler, classes from 1: trained for 30 epochs, not 40
        ("wine", [("epochs=40", "epochs=30")], {"training"}, "expected 40"),
        # a Normalization layer: a Dense of 8 for 16
        ("breast_cancer_normalization", [("layers.Dense(16,", "layers.Dense(8,")], {"architecture", "params"},
         "Dense(16, relu)"),
        # validation_split=0.1: three tenths kept instead
        ("diabetes_measured", [("validation_split=0.1", "validation_split=0.3")], {"training"},
         "expected the 318 of the 354 training rows"),
        # a validation set split by hand: an embedding of 32 dimensions for 16
        ("reviews", [("layers.Embedding(300, 16)", "layers.Embedding(300, 32)")], {"architecture", "params"},
         "Embedding"),
    ],
)  # fmt: skip
def test_a_wrong_variant_of_each_authors_exercise_loses_the_check_it_names(stem, replacements, failing, said, tmp_path):
    verdicts = graded_variant(stem, replacements, tmp_path)
    assert {kind for kind, (status, _) in verdicts.items() if status == "fail"} == failing, verdicts
    assert all(verdicts[kind][0] == "pass" for kind in RIGHT if kind not in failing), verdicts
    assert any(said in verdicts[kind][1] for kind in failing), verdicts


@pytest.mark.slow  # a solution run, a calibration run and a validation: about a minute
def test_grader_new_holds_back_a_private_share_of_the_test_rows(tmp_path):
    import numpy as np
    from click.testing import CliRunner

    from grader.cli import cli

    shipped_exercise("wine", tmp_path)
    course = tmp_path / "course"
    outcome = CliRunner().invoke(
        cli,
        ["new", str(tmp_path / "wine_solution.ipynb"), "--out", str(course / "wine.toml"), "--private-share", "0.5",
         "--seeds", "1"],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    with np.load(course / "wine.npz") as public, np.load(course / "wine_private_test.npz") as private:
        assert len(public["x_test"]) == len(private["x_test"]) == 18 and len(public["x_train"]) == 142
    assert 'private_test = "wine_private_test.npz"' in (course / "wine.toml").read_text()
