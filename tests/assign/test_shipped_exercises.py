"""`grader new` on the MNIST exercise's own solution (slow: the solution trains 80 epochs): the
spec it writes states the hand-written spec's models and data, and grades the samples and the
corpus of real-world traits as the hand-written one does; and every shipped spec validates
(each solution graded in full mode)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.spec.exercise import load_spec
from tests.assign.conftest import shipped_exercise

pytestmark = [pytest.mark.slow, pytest.mark.kernel]
ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reference"


def verdicts(out: Path) -> dict[str, dict[str, tuple[str, float]]]:
    run = json.loads((out / "results.json").read_text())
    return {
        result["id"]: {check["id"]: (check["status"], check["points"]) for check in result["checks"]}
        for result in run["submissions"]
    }


def test_the_mnist_spec_written_from_the_solution_grades_as_the_hand_written_one(mnist_path, tmp_path):
    written = tmp_path / "exercise" / "mnist_mlp.toml"
    arguments = ["new", str(REFERENCE / "mnist_mlp_solution.ipynb"), "--out", str(written), "--seeds", "0",
                 "--data", str(mnist_path)]  # fmt: skip
    outcome = CliRunner().invoke(cli, arguments)
    assert outcome.exit_code == 0, outcome.output
    generated, hand_written = load_spec(written), load_spec(REFERENCE / "mnist_mlp.toml")
    fields = ("name", "layers", "params", "optimizer", "learning_rate", "losses", "batch_size", "epochs")
    assert [[getattr(model, key) for key in fields] for model in generated.models] == [
        [getattr(model, key) for key in fields] for model in hand_written.models
    ]
    assert generated.data.preprocessing == hand_written.data.preprocessing
    assert (generated.data.keras_dataset, generated.data.url, generated.data.file_sha256) == (
        hand_written.data.keras_dataset, hand_written.data.url, hand_written.data.file_sha256,
    )  # fmt: skip
    classroom = tmp_path / "classroom"
    shutil.copytree(ROOT / "tests" / "fixtures" / "corpus", classroom)
    for sample in (ROOT / "submissions").glob("*.ipynb"):
        shutil.copy(sample, classroom)
    graded = {}
    for name, spec in (("generated", written), ("hand_written", REFERENCE / "mnist_mlp.toml")):
        out = tmp_path / name
        arguments = ["grade", str(classroom), "--out", str(out), "--quick", "--jobs", "2", "--spec", str(spec),
                     "--data", str(mnist_path), "--partial"]  # fmt: skip
        outcome = CliRunner().invoke(cli, arguments)
        assert outcome.exit_code == 0, outcome.output
        graded[name] = verdicts(out)
    assert len(graded["generated"]) == 12 and graded["generated"] == graded["hand_written"]


@pytest.mark.parametrize("spec", ["mnist_mlp.toml", "mnist_mlp_open.toml", "mnist_lenet.toml"])
def test_every_shipped_mnist_spec_validates(spec, mnist_path):
    outcome = CliRunner().invoke(cli, ["validate", "--spec", str(REFERENCE / spec), "--data", str(mnist_path)])
    assert outcome.exit_code == 0, outcome.output
    assert "ready to grade" in outcome.output


@pytest.mark.parametrize("stem", ["digits_cnn", "breast_cancer", "marker_sequences", "diabetes"])
def test_every_shipped_exercise_with_a_data_file_validates(stem, tmp_path):
    outcome = CliRunner().invoke(cli, ["validate", "--spec", str(shipped_exercise(stem, tmp_path))])
    assert outcome.exit_code == 0, outcome.output
    assert "ready to grade" in outcome.output
