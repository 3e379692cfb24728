"""What writing one submission's pages costs the process that writes the reports: drawn
whole there (``--jobs 1``), or put together from the parts its worker drew (``draw_parts``).
That process writes every page of the class, so its cost per notebook caps the grades per
hour however many workers grade. No kernel: a result of the full-mode fixture run. Run with
`tox -e bench`; the default test run skips it."""

import nbformat
import pytest

from grader.judge.results import Graded
from grader.reports.outputs import write_page
from grader.reports.pages import draw_parts
from tests.conftest import ROOT
from tests.reports.test_outputs import load_run


@pytest.fixture(scope="module")
def graded():
    run = load_run("full_run")
    result = next(entry for entry in run.submissions if entry.id == "mnist_mlp_solution")
    # The model solution's cells, with outputs of the size a run prints: a realistic notebook page.
    notebook = nbformat.read(ROOT / "reference" / "mnist_mlp_solution.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="Epoch 1/20 - loss: 0.2\n" * 20)]
    return run, Graded(result, nbformat.writes(notebook))


def test_pages_drawn_whole(benchmark, graded, spec, tmp_path):
    run, one = graded
    # Each round into a folder of its own: a page already there, from the same result, would be kept.
    folders = iter(range(10**6))
    benchmark(lambda: write_page(one.result, one.notebook, run, spec, tmp_path / str(next(folders))))


def test_pages_put_together_from_a_workers_drawings(benchmark, graded, spec, tmp_path):
    run, one = graded
    drawn = draw_parts(one, spec)
    folders = iter(range(10**6))
    benchmark(
        lambda: write_page(one.result, one.notebook, run, spec, tmp_path / str(next(folders)), drawings=drawn.drawings)
    )
