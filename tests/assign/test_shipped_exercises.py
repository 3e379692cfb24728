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


@pytest.mark.parametrize(
    "stem",
    [
        "digits_cnn", "breast_cancer", "marker_sequences", "diabetes", "colour_blobs", "wine",
        "breast_cancer_normalization", "diabetes_measured", "reviews",
    ],
)  # fmt: skip
def test_every_shipped_exercise_with_a_data_file_validates(stem, tmp_path):
    outcome = CliRunner().invoke(cli, ["validate", "--spec", str(shipped_exercise(stem, tmp_path))])
    assert outcome.exit_code == 0, outcome.output
    assert "ready to grade" in outcome.output


RESIDUAL_CNN = """### BEGIN SOLUTION
images = keras.Input(shape=(8, 8, 1))
stem = layers.Conv2D(16, 3, padding="same", activation="relu")(images)
inner = layers.Conv2D(16, 3, padding="same", activation="relu")(stem)
joined = layers.Add()([inner, stem])
pooled = layers.Flatten()(layers.MaxPooling2D(2)(joined))
cnn = keras.Model(images, layers.Dense(10, activation="softmax")(pooled))
cnn.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="categorical_crossentropy", metrics=["accuracy"])
history = cnn.fit(x_train, y_train, batch_size=32, epochs=20, validation_data=(x_test, y_test), verbose=0)
### END SOLUTION"""


@pytest.mark.parametrize(
    ("stem", "replace", "written"),
    [
        # a residual block, in a Functional model
        ("digits_cnn", RESIDUAL_CNN, '{type = "Add", inputs = [0, 1]}'),
        # a recurrent layer both ways
        ("marker_sequences", ("layers.GRU(16)", "layers.Bidirectional(layers.GRU(16))"),
         '{type = "Bidirectional", units = 16, wrapped = "GRU"}'),
    ],
)  # fmt: skip
def test_new_layers_go_through_grader_new_and_validate_end_to_end(stem, replace, written, tmp_path):
    """A solution with a residual block or a Bidirectional layer: `grader new` reads it from the
    kernel into a spec, calibrates it, and `grader validate` grades the solution full marks."""
    import nbformat

    (tmp_path / "author").mkdir()
    shipped_exercise(stem, tmp_path / "author")
    solution = nbformat.read(tmp_path / "author" / f"{stem}_solution.ipynb", as_version=4)
    cell = next(cell for cell in solution.cells if "BEGIN SOLUTION" in cell.source)
    cell.source = replace if isinstance(replace, str) else cell.source.replace(*replace)
    path = tmp_path / "author" / "variant_solution.ipynb"
    nbformat.write(solution, path)
    spec = tmp_path / "course" / "variant.toml"
    outcome = CliRunner().invoke(cli, ["new", str(path), "--out", str(spec), "--seeds", "2"])
    assert outcome.exit_code == 0, outcome.output
    assert written in spec.read_text()
    outcome = CliRunner().invoke(cli, ["validate", "--spec", str(spec)])
    assert outcome.exit_code == 0, outcome.output
    assert "ok solution: full marks in full mode" in outcome.output
