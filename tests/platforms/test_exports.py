"""What ``grader export`` writes to set a course up on each platform."""

from __future__ import annotations

import json
import py_compile
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from grader.cli import cli
from grader.platforms import exports
from grader.platforms.exports import PACKAGE
from grader.spec.exercise import DEFAULT_SPEC, load_spec
from tests.assign.conftest import shipped_exercise

SPEC = load_spec(DEFAULT_SPEC)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A stand-in for the data set: the exports copy it, they do not read it."""
    path = tmp_path / "stand-in.npz"
    path.write_bytes(b"not really MNIST")
    return path


def test_the_gradescope_zip_has_its_scripts_at_the_root_executable_and_the_grader_bundled(
    tmp_path: Path, data: Path
) -> None:
    out = exports.export_gradescope(tmp_path / "autograder.zip", SPEC, data, quick=True)
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        run_autograder = archive.read("run_autograder").decode()
        setup = archive.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "spec/mnist_mlp.toml", "spec/mnist_mlp.calibration.json"} <= names
    assert {"data/mnist.npz", "grader-package/pyproject.toml", "grader-package/grader/cli/__init__.py"} <= names
    assert "grader-package/grader/reports/templates/index.html.j2" in names
    assert not any("__pycache__" in name for name in names)
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert run_autograder.startswith("#!/usr/bin/env bash")
    assert (
        "grader gradescope --root /autograder --spec /autograder/source/spec/mnist_mlp.toml "
        "--data /autograder/source/data/mnist.npz --quick"
    ) in run_autograder
    assert "pip install -q /autograder/source/grader-package" in setup


def test_the_bundled_grader_builds_into_a_package_with_its_templates(tmp_path: Path) -> None:
    exports.bundle(tmp_path, SPEC, None)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "w"),
         str(tmp_path / "grader-package")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "w").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(name).decode() for name in names if name.endswith("METADATA"))
    templates = {f"grader/{path.relative_to(PACKAGE).as_posix()}" for path in PACKAGE.glob("*/templates/*")}
    assert templates and templates | {"grader/cli/__init__.py"} <= names
    assert "Requires-Dist: tensorflow" in metadata and "Requires-Dist: ray" not in metadata


def test_the_prairielearn_export_has_an_image_and_the_question_options(tmp_path: Path, data: Path) -> None:
    out = exports.export_prairielearn(tmp_path / "pl", SPEC, data, quick=False)
    dockerfile = (out / "Dockerfile").read_text()
    entrypoint = json.loads(next(line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT"))[10:])
    assert entrypoint[:4] == ["grader", "prairielearn", "--root", "/grade"]
    assert "--full" in entrypoint and "/opt/grader/data/mnist.npz" in entrypoint
    assert "COPY data /opt/grader/data" in dockerfile
    options = json.loads((out / "info.json").read_text())
    assert options["gradingMethod"] == "External"
    assert 0 < options["externalGradingOptions"]["timeout"] <= 600  # PrairieLearn's maximum
    assert (out / "spec" / "mnist_mlp.toml").is_file() and (out / "grader-package" / "pyproject.toml").is_file()


@pytest.mark.parametrize("quick", [True, False])
def test_the_github_workflow_scores_each_check_in_a_step_and_stops_on_a_fault_of_the_grader(
    tmp_path: Path, quick: bool
) -> None:
    out = exports.export_github(tmp_path / "gh", SPEC, quick, "git+https://example.org/grader.git")
    workflow = yaml.safe_load((out / ".github" / "workflows" / "classroom.yml").read_text())
    assert workflow["name"] == "Autograding Tests"  # the check run GitHub Classroom reads
    steps = workflow["jobs"]["run-autograding-tests"]["steps"]
    grade = next(step for step in steps if step.get("name") == "Grade the notebook")
    assert grade["run"].endswith("|| test $? -eq 1")  # exit 3 (a fault of the grader's) stops the job
    assert f"--spec .github/grader/{SPEC.path.name}" in grade["run"]
    graders = [step for step in steps if "autograding-command-grader" in step.get("uses", "")]
    expected = {
        f"{model.name}.{kind}": points
        for model in SPEC.models
        for kind, points in model.points.items()
        if not (quick and kind == "accuracy")
    }
    assert {step["with"]["test-name"]: step["with"]["max-score"] for step in graders} == expected
    assert all(step["with"]["command"].endswith(f"--check {step['with']['test-name']}") for step in graders)
    reporter = steps[-1]
    ids = [step["id"] for step in graders]
    assert reporter["with"]["runners"] == ",".join(ids)
    assert set(reporter["env"]) == {f"{step_id.upper()}_RESULTS" for step_id in ids}
    assert (out / ".github" / "grader" / SPEC.path.name).is_file()


def test_the_classroom50_autograder_names_its_sibling_spec(tmp_path: Path) -> None:
    out = exports.export_github(tmp_path / "gh", SPEC, True, "keras-exercise-grader")
    script = out / "classroom50" / "autograder.py"
    py_compile.compile(str(script), doraise=True)
    assert "--classroom50" in script.read_text() and (script.parent / SPEC.path.name).is_file()


def test_export_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "gh").mkdir()
    outcome = CliRunner().invoke(cli, ["export", "github", "--out", str(tmp_path / "gh")])
    assert outcome.exit_code == 3 and "exists already" in outcome.output


def test_an_exercise_whose_data_is_a_file_ships_it_beside_its_spec(tmp_path: Path) -> None:
    """The notebook opens digits.npz by that name: the file travels beside the spec (its hash
    checked there before grading), on every platform, and the sandbox places it beside the notebook."""
    (tmp_path / "exercise").mkdir()
    spec = load_spec(shipped_exercise("digits_cnn", tmp_path / "exercise"))
    out = exports.export_prairielearn(tmp_path / "pl", spec, None, quick=True)
    dockerfile = (out / "Dockerfile").read_text()
    assert "--data" not in dockerfile and "COPY data" not in dockerfile
    assert (out / "spec" / "digits.npz").read_bytes() == Path(str(spec.data.file)).read_bytes()
    github = exports.export_github(tmp_path / "gh", spec, quick=True, requirement="keras-exercise-grader")
    assert (github / ".github" / "grader" / "digits.npz").is_file() and (
        github / "classroom50" / "digits.npz"
    ).is_file()
