"""Similarity across the class: a disguised copy is flagged, honest students and the code
everyone is given are not, and the pairs reach the class page and ``grader similarity``."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.judge.results import GradeRun
from grader.reports.pages import index_page
from grader.reports.similarity import class_similarity, expected_code, notebook_code
from grader.spec.exercise import DEFAULT_SPEC, load_spec
from tests.reports.synthetic_class import student_cells, write_class, write_notebook

SPEC = load_spec(DEFAULT_SPEC)
EXPECTED = expected_code(SPEC.handout, SPEC.solution)


def test_the_spec_names_a_handout_whose_code_is_left_out() -> None:
    assert SPEC.handout is not None and SPEC.handout.is_file()
    assert "model_1 = Sequential()" in notebook_code(SPEC.handout)
    assert "model_1.fit(" in EXPECTED  # the solution's code counts as expected too


def test_a_disguised_copy_is_flagged_and_honest_students_are_not(tmp_path: Path) -> None:
    notebooks = write_class(tmp_path, honest=8, copied=(5,))
    found = class_similarity(notebooks, EXPECTED)
    assert [(pair.first, pair.second) for pair in found.pairs] == [("copy_of_005", "student_005")]
    assert found.compared == 9
    pair = found.pairs[0]
    assert min(pair.shares) > 0.95
    assert "<mark>" in pair.first_code and "<mark>" in pair.second_code


def _filled_handout(own_cells: list[str], path: Path) -> Path:
    """The handout with its cells kept as given and a student's own cells added."""
    handout = nbformat.read(SPEC.handout, as_version=4)  # type: ignore[no-untyped-call]
    given = [cell.source for cell in handout.cells if cell.cell_type == "code"]
    return write_notebook(given + own_cells, path)


def test_the_shared_template_is_not_flagged(tmp_path: Path) -> None:
    first = _filled_handout(student_cells(1)[4:6], tmp_path / "first.ipynb")
    second = _filled_handout(student_cells(2)[4:6], tmp_path / "second.ipynb")
    notebooks = {"first": first, "second": second}
    assert class_similarity(notebooks, expected="", threshold=0.8).pairs, "the template alone makes them similar"
    assert class_similarity(notebooks, EXPECTED, threshold=0.0).pairs == ()  # their own code shares nothing


def test_notebooks_with_nothing_of_their_own_or_no_code_are_never_a_pair(tmp_path: Path) -> None:
    notebooks = {
        "handout_only": _filled_handout([], tmp_path / "a.ipynb"),
        "handout_again": _filled_handout([], tmp_path / "b.ipynb"),
        "not_a_notebook": tmp_path / "c.ipynb",
    }
    notebooks["not_a_notebook"].write_text("{ not json")
    assert class_similarity(notebooks, EXPECTED, threshold=0.0).pairs == ()


def test_grader_similarity_writes_the_pairs_side_by_side(tmp_path: Path) -> None:
    write_class(tmp_path / "class", honest=4, copied=(2,))
    (tmp_path / "class" / "notes.txt").write_text("not a notebook")
    result = CliRunner().invoke(cli, ["similarity", str(tmp_path / "class"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "copy_of_002" in result.output and "student_002" in result.output
    assert "notes.txt" in result.output  # reported, not dropped silently
    page = (tmp_path / "out" / "similarity.html").read_text()
    assert "copy_of_002" in page and "<mark>" in page and "Content-Security-Policy" in page


@pytest.mark.parametrize("threshold", ["1.5", "-0.1"])
def test_grader_similarity_refuses_a_threshold_out_of_range(tmp_path: Path, threshold: str) -> None:
    result = CliRunner().invoke(cli, ["similarity", str(tmp_path), "--threshold", threshold])
    assert result.exit_code == 2 and "--threshold" in result.output


def test_the_class_page_lists_the_pairs_with_the_shared_code_escaped(tmp_path: Path) -> None:
    notebooks = write_class(tmp_path, honest=3, copied=(1,))
    (tmp_path / "copy_of_001.ipynb").write_text(
        (tmp_path / "copy_of_001.ipynb").read_text().replace("# I worked on this on my own", "# <script>x</script>")
    )
    page = index_page(GradeRun("0.3.0", "quick", "MNIST", ()), SPEC, class_similarity(notebooks, EXPECTED))
    assert '<h2 id="similarity">Similar notebooks</h2>' in page
    assert "<td>copy_of_001</td><td>student_001</td>" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "Similar notebooks" not in index_page(GradeRun("0.3.0", "quick", "MNIST", ()), SPEC)


@pytest.mark.timeout(60)
def test_a_students_own_marker_characters_cannot_open_or_close_a_mark_and_huge_code_is_cut(tmp_path: Path) -> None:
    import json

    from grader.reports.similarity import MAX_CODE_CHARS

    code = "total = 0\n" * 200_000 + "a = '\x00'\nb = '\x01</mark>'\n"  # 2 MB: 28 s a pair uncut
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code[::-1]), nbformat.v4.new_code_cell(code)])
    paths = {name: tmp_path / f"{name}.ipynb" for name in ("first", "second")}
    for path in paths.values():
        path.write_text(json.dumps(notebook))  # \ud800 and NUL as JSON escapes
    assert len(notebook_code(paths["first"])) == MAX_CODE_CHARS
    (pair,) = class_similarity(paths, "").pairs
    for marked in (pair.first_code, pair.second_code):
        assert "\x00" not in marked and "\x01" not in marked
        assert marked.count("<mark>") == marked.count("</mark>")
