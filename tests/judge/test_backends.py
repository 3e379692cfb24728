"""The samples and the corpus grade on every other Keras backend installed here (JAX, PyTorch)
with the verdicts they get on TensorFlow (``tests/golden``), in quick mode. They skip where
only TensorFlow is installed: ``tox -e jax`` runs them on JAX, in an environment without
TensorFlow, where a notebook's ``tf.keras`` runs on the stand-in, with a warning, and the one
notebook that needs TensorFlow itself (``tf.data``, ``tf.constant``) is told to write Keras."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.run.backends import installed_backends
from tests.conftest import FIXTURES, ROOT
from tests.judge.test_grading_kernel import GOLDEN_RESULTS, verdict_fields
from tests.judge.test_real_classrooms import CORPUS, GOLDEN, OPEN_SPEC

pytestmark = pytest.mark.kernel
OTHER_BACKENDS = [name for name in installed_backends() if name != "tensorflow"]
TENSORFLOW_INSTALLED = importlib.util.find_spec("tensorflow") is not None
STAND_IN_WARNING = "not installed here: tensorflow: its tf.keras ran as Keras on {backend}; write `import keras`"
# The corpus notebook that feeds fit with tf.data and tf.constant: it needs TensorFlow itself.
NEEDS_TENSORFLOW = "datasets_sparse_labels_early_stopping"
# What the golden file of the samples holds the verdicts of (see ``graded_samples``)
SAMPLES = [*(ROOT / "submissions").glob("*.ipynb"), FIXTURES / "notebooks" / "script_in_markdown.ipynb"]


@pytest.fixture(
    scope="module",
    params=OTHER_BACKENDS or [pytest.param(None, marks=pytest.mark.skip(reason="only TensorFlow is installed here"))],
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def grade(paths: list[Path], out: Path, backend: str, mnist_path: Path, *options: str) -> dict:
    arguments = ["grade", *map(str, paths), "--out", str(out), "--quick", "--jobs", "2", "--backend", backend,
                 "--data", str(mnist_path), "--no-similarity", *options]  # fmt: skip
    outcome = CliRunner().invoke(cli, arguments)
    assert outcome.exit_code == 0, outcome.output
    return json.loads((out / "results.json").read_text())


def imports_tensorflow(path: Path) -> bool:
    return "import tensorflow" in path.read_text()


def test_the_samples_and_the_corpus_get_the_verdicts_of_tensorflow(backend, mnist_path, tmp_path):
    samples = grade(SAMPLES, tmp_path / "samples", backend, mnist_path)
    corpus = grade([CORPUS], tmp_path / "corpus", backend, mnist_path, "--spec", str(OPEN_SPEC))
    assert {result["backend"] for result in samples["submissions"] + corpus["submissions"]} == {f"{backend}/cpu"}
    expected = {**json.loads(GOLDEN_RESULTS.read_text()), **json.loads(GOLDEN.read_text())}
    graded = {**verdict_fields(samples), **verdict_fields(corpus)}
    notebooks = {path.stem: path for path in [*SAMPLES, *CORPUS.glob("*.ipynb")]}
    assert set(graded) == set(expected) == set(notebooks)
    stand_in = STAND_IN_WARNING.format(backend=backend)
    if not TENSORFLOW_INSTALLED:
        needs_tensorflow = graded.pop(NEEDS_TENSORFLOW)
        del expected[NEEDS_TENSORFLOW]
        # Told in which cell and what to write instead, then graded on what ran.
        told = (
            f"cell 2 raised AttributeError: TensorFlow is not installed where this notebook is graded (Keras runs on "
            f"{backend} here), and tensorflow.data needs it. Write it with Keras"
        )
        assert any(warning.startswith(told) for warning in needs_tensorflow["warnings"]), needs_tensorflow["warnings"]
        assert needs_tensorflow["status"] == "graded"
        for name, result in graded.items():
            if imports_tensorflow(notebooks[name]):
                assert stand_in in result["warnings"]
                result["warnings"].remove(stand_in)
    assert graded == expected


@pytest.mark.skipif(TENSORFLOW_INSTALLED, reason="TensorFlow is installed here: tox -e jax grades without it")
def test_without_tensorflow_nothing_of_the_grading_path_needs_it(backend, mnist_path, tmp_path):
    run = grade([ROOT / "submissions" / "wrong_architecture.ipynb"], tmp_path, backend, mnist_path)
    assert run["submissions"][0]["status"] == "graded"
    assert "tensorflow" not in sys.modules


@pytest.mark.slow
def test_a_full_grade_of_the_solution_passes_every_check(backend, mnist_path, tmp_path):
    arguments = ["check", str(ROOT / "reference" / "mnist_mlp_solution.ipynb"), "--full", "--json", "--backend",
                 backend, "--data", str(mnist_path)]  # fmt: skip
    outcome = CliRunner().invoke(cli, arguments)
    result = json.loads(outcome.output[outcome.output.index("{") :])
    assert outcome.exit_code == 0, [check for check in result["checks"] if check["status"] != "pass"]
    assert result["score"] == result["max_score"] and result["backend"] == f"{backend}/cpu"
    assert all(model["test_accuracy"] > 0.95 for model in result["models"].values())
