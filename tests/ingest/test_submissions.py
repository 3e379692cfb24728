import json
import os

import nbformat
import pytest

from grader.ingest.notebook import InvalidSubmission, load_submission


def write_notebook(path, cells):
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_stored_outputs_are_cleared(tmp_path):
    cell = nbformat.v4.new_code_cell(
        "print(1)", execution_count=3, outputs=[nbformat.v4.new_output("stream", text="Test accuracy: 0.999")]
    )
    submission = load_submission(write_notebook(tmp_path / "alice.ipynb", [cell]))
    assert submission.id == "alice"
    assert submission.notebook.cells[0].outputs == []
    assert submission.notebook.cells[0].execution_count is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a valid Jupyter notebook"),
        (json.dumps({"cells": "nope"}), "not a valid Jupyter notebook"),
        (b"\xff\xfe binary", "not a valid Jupyter notebook"),
    ],
)
def test_files_that_are_not_notebooks_are_invalid(tmp_path, content, message):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InvalidSubmission, match=message):
        load_submission(path)


def test_a_notebook_without_code_is_invalid(tmp_path):
    path = write_notebook(tmp_path / "empty.ipynb", [nbformat.v4.new_markdown_cell("# nothing")])
    with pytest.raises(InvalidSubmission, match="no code to run"):
        load_submission(path)


def test_a_very_large_notebook_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "huge.ipynb"
    path.write_bytes(b" " * (21 * 2**20))
    with pytest.raises(InvalidSubmission, match=r"21\.0 MiB.*Clear the outputs"):
        load_submission(path)


def test_odd_file_names_keep_their_id(tmp_path):
    cell = nbformat.v4.new_code_cell("x = 1")
    path = write_notebook(tmp_path / "José's notebook (v2) <final>.ipynb", [cell])
    assert load_submission(path).id == "José's notebook (v2) <final>"


def test_a_symbolic_link_is_refused_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for students")
    link = tmp_path / "sneaky.ipynb"
    link.symlink_to(secret)
    with pytest.raises(InvalidSubmission, match="symbolic link"):
        load_submission(link)


def test_a_lone_surrogate_is_read_as_a_replacement_character_and_said(tmp_path):
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("Model 2 \ud800 wins"), nbformat.v4.new_code_cell("x = '\udfff'")]
    )
    path = tmp_path / "surrogate.ipynb"
    path.write_text(json.dumps(notebook))  # a lone surrogate as JSON writes it: its escape
    submission = load_submission(path)
    assert [cell.source for cell in submission.notebook.cells] == ["Model 2 \ufffd wins", "x = '\ufffd'"]
    assert submission.notes == (
        "the notebook holds 2 characters that are not text (lone surrogates, from an escape such as \\ud800); "
        "the grader read each as \ufffd",
    )
    assert nbformat.writes(submission.notebook).encode("utf-8")


def test_a_file_name_that_is_not_utf8_is_an_id_every_output_can_hold(tmp_path):
    name = os.fsdecode(b"bad\xff\xfe\xe2\x80\xaename.ipynb")
    path = write_notebook(tmp_path / name, [nbformat.v4.new_code_cell("1")])
    submission = load_submission(path)
    assert submission.id == "bad\\xff\\xfe\\u202ename"
    assert submission.id.encode("utf-8")
