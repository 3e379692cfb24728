"""What stops `grader new` before the solution runs, saying what to do; nothing is written."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.assign.new import default_spec_path, new_exercise
from grader.errors import SpecError
from tests.assign.test_data_source import keras_layout


@pytest.fixture
def solution(tmp_path):
    keras_layout(tmp_path / "digits.npz")
    path = tmp_path / "digits_cnn_solution.ipynb"
    source = 'data = np.load("digits.npz")\n### BEGIN SOLUTION\nmodel = None\n### END SOLUTION'
    nbformat.write(new_notebook(cells=[new_code_cell(source)]), path)
    return path


@pytest.mark.parametrize(
    ("out", "arguments", "message"),
    [
        ("digits.json", {}, "a spec is a .toml file; name one \\(say digits_cnn.toml\\)"),
        ("existing.toml", {}, "would write over .*existing.toml: pass --force to write over them"),
        (
            "digits.toml",
            {"data_path": "mnist.npz"},
            "the solution opens digits.npz beside it: that is its data; leave --data out",
        ),
    ],
)
def test_grader_new_refuses_before_running_anything(solution, tmp_path, out, arguments, message):
    (tmp_path / "existing.toml").write_text("# an instructor's spec\n")
    extra = {key: tmp_path / value for key, value in arguments.items()}
    with pytest.raises(SpecError, match=message):
        new_exercise(solution, tmp_path / out, **extra)
    assert (tmp_path / "existing.toml").read_text() == "# an instructor's spec\n"
    assert not (tmp_path / "digits.toml").exists() and not (tmp_path / "digits_cnn_handout.ipynb").exists()


def test_a_handout_or_calibration_of_the_same_name_is_not_written_over_without_force(solution, tmp_path):
    (tmp_path / "digits_handout.ipynb").write_text("the instructor's own handout")
    (tmp_path / "digits.calibration.json").write_text("{}")
    with pytest.raises(SpecError, match=r"would write over .*digits_handout\.ipynb, .*digits\.calibration\.json"):
        new_exercise(solution, tmp_path / "digits.toml")
    assert (tmp_path / "digits_handout.ipynb").read_text() == "the instructor's own handout"


def test_a_solution_without_solution_regions_is_refused_saying_what_to_add(tmp_path):
    path = tmp_path / "plain_solution.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("model.fit(x, y)")]), path)
    with pytest.raises(SpecError, match=r"no solution regions.*### BEGIN SOLUTION"):
        new_exercise(path, tmp_path / "plain.toml")
    assert not (tmp_path / "plain.toml").exists()


def test_a_file_that_is_no_notebook_is_refused_saying_so(tmp_path):
    (tmp_path / "broken_solution.ipynb").write_text("{ not json")
    with pytest.raises(SpecError, match=r"broken_solution\.ipynb is not a readable notebook"):
        new_exercise(tmp_path / "broken_solution.ipynb", tmp_path / "broken.toml")


def test_the_spec_is_named_after_the_solution():
    assert default_spec_path(Path("course/lenet_solution.ipynb")) == Path("course/lenet.toml")
    assert default_spec_path(Path("course/lenet.ipynb")) == Path("course/lenet.toml")


@pytest.mark.parametrize(
    ("share", "out", "message"),
    [
        (1.5, "course/digits.toml", "between 0 and 1"),
        (0.5, "digits.toml", "give --out in another folder"),
    ],
)
def test_a_private_share_is_split_off_into_a_course_folder_of_its_own(solution, tmp_path, share, out, message):
    with pytest.raises(SpecError, match=message):
        new_exercise(solution, tmp_path / out, private_share=share)
    assert not (tmp_path / "course").exists()
