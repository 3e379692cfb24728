"""What sets a course up on an autograder platform: the grader itself (this installed
package, bundled so the platform needs only PyPI for its dependencies), the spec and its
calibration, the data set, and the platform's scripts."""

from __future__ import annotations

import json
import re
import shutil
import stat
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from grader import __version__
from grader.spec.exercise import Spec

DISTRIBUTION = "keras-exercise-grader"
PACKAGE = Path(__file__).resolve().parents[1]


def bundle(into: Path, spec: Spec, data_path: Path | None) -> None:
    """``into/grader-package`` (installable with pip), ``into/spec`` and ``into/data``."""
    package = into / "grader-package"
    shutil.copytree(PACKAGE, package / "grader", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    requirements = [
        requirement for requirement in metadata.requires(DISTRIBUTION) or [] if "extra ==" not in requirement
    ]
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{DISTRIBUTION}"\nversion = "{__version__}"\nrequires-python = ">=3.11"\n'
        f'dependencies = {json.dumps(requirements)}\n\n[project.scripts]\ngrader = "grader.cli:main"\n\n'
        '[tool.setuptools.packages.find]\ninclude = ["grader*"]\n\n[tool.setuptools.package-data]\n'
        '"grader.reports" = ["templates/*", "results.schema.json"]\n"grader.judge" = ["templates/*"]\n'
        '"grader.review" = ["templates/*", "static/*"]\n"grader.assign" = ["templates/*"]\n'
    )
    (into / "spec").mkdir()
    for file in spec.files:
        shutil.copy(file, into / "spec" / file.name)
    if data_path is not None:
        (into / "data").mkdir()
        shutil.copy(data_path, into / "data" / _data_file_name(spec))


def _data_file_name(spec: Spec) -> str:
    """The data set's file name in a bundle: the spec's data file's, or its loader's."""
    return spec.data.name if spec.data.file else f"{spec.data.keras_dataset}.npz"


def _command(entry: str, root: str, spec: Spec, with_data: bool, quick: bool, source: str) -> str:
    data = f" --data {source}/data/{_data_file_name(spec)}" if with_data else ""
    mode = " --quick" if quick else " --full"
    return f"grader {entry} --root {root} --spec {source}/spec/{spec.path.name}{data}{mode}"


GRADESCOPE_SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu 22.04).
set -euo pipefail
apt-get update -q
apt-get install -y -q python3.11 python3.11-venv bubblewrap
python3.11 -m venv /autograder/venv
/autograder/venv/bin/pip install -q /autograder/source/grader-package
"""


def export_gradescope(out: Path, spec: Spec, data_path: Path | None, quick: bool) -> Path:
    """The autograder zip to upload to a Gradescope programming assignment."""
    with tempfile.TemporaryDirectory(prefix="grader-export-") as folder:
        root = Path(folder)
        bundle(root, spec, data_path)
        (root / "setup.sh").write_text(GRADESCOPE_SETUP)
        command = _command("gradescope", "/autograder", spec, data_path is not None, quick, "/autograder/source")
        (root / "run_autograder").write_text(
            f"#!/usr/bin/env bash\n# Gradescope runs this for every submission.\nexec /autograder/venv/bin/{command}\n"
        )
        for script in ("setup.sh", "run_autograder"):
            (root / script).chmod(0o755)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo.from_file(path, path.relative_to(root).as_posix())
                    info.compress_type = zipfile.ZIP_DEFLATED
                    if path.stat().st_mode & stat.S_IXUSR:
                        info.external_attr = (0o755 | stat.S_IFREG) << 16
                    archive.writestr(info, path.read_bytes())
    return out


def export_prairielearn(out: Path, spec: Spec, data_path: Path | None, quick: bool) -> Path:
    """A folder with the external grader's Docker image and the ``info.json`` options."""
    out.mkdir(parents=True)
    bundle(out, spec, data_path)
    command = _command("prairielearn", "/grade", spec, data_path is not None, quick, "/opt/grader")
    (out / "Dockerfile").write_text(
        "# PrairieLearn's external grader: build it, push it, name it in info.json.\n"
        "FROM python:3.11-slim\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap util-linux "
        "&& rm -rf /var/lib/apt/lists/*\n"
        "COPY grader-package /opt/grader/grader-package\n"
        "RUN pip install --no-cache-dir /opt/grader/grader-package\n"
        "COPY spec /opt/grader/spec\n"
        + ("COPY data /opt/grader/data\n" if data_path else "")
        + f"ENTRYPOINT {json.dumps(command.split())}\n"
    )
    options = {
        "gradingMethod": "External",
        "externalGradingOptions": {"image": "YOUR-REGISTRY/keras-grader", "timeout": 600},
    }
    (out / "info.json").write_text(json.dumps(options, indent=2) + "\n")
    return out


def export_github(out: Path, spec: Spec, quick: bool, requirement: str) -> Path:
    """A GitHub Classroom template's workflow and a classroom50 ``autograder.py``, each with the
    spec beside it; they install the grader (``requirement``, as pip takes it) and grade the
    repository's notebook. The data set is downloaded by the grader from the spec's address,
    checked against its hash."""
    mode = "--quick" if quick else "--full"
    workflows = out / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for folder in (out / ".github" / "grader", out / "classroom50"):
        folder.mkdir(parents=True)
        for file in spec.files:
            shutil.copy(file, folder / file.name)
    (workflows / "classroom.yml").write_text(_classroom_workflow(spec, mode, requirement))
    (out / "classroom50" / "autograder.py").write_text(
        f'''"""classroom50 runs this in the student's checkout: it installs the grader, grades the
notebook and writes result.json (classroom50/result/v1). It exits 0 whenever grading ran."""

import subprocess
import sys
from pathlib import Path

SPEC = Path(__file__).resolve().parent / {spec.path.name!r}
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", {requirement!r}])
grade = ["grader", "github", "--root", ".", "--classroom50", "--spec", str(SPEC), {mode!r}]
sys.exit(subprocess.call([sys.executable, "-m", *grade]))
'''
    )
    return out


def _classroom_workflow(spec: Spec, mode: str, requirement: str) -> str:
    """GitHub Classroom's workflow: grade once, then a command-grader step per check, so that
    each check earns its points. A fault of the grader's stops the job before the reporter:
    Classroom records no grade from that run, rather than a zero."""
    spec_path = f".github/grader/{spec.path.name}"
    checks = [
        (f"{model.name}.{kind}", points)
        for model in spec.models
        for kind, points in model.points.items()
        if not (mode == "--quick" and kind == "accuracy")  # quick grading skips accuracy
    ]
    steps = "".join(
        f"""      - name: {check}
        id: {_step_id(check)}
        uses: classroom-resources/autograding-command-grader@v1
        with:
          test-name: {check}
          command: grader github --root . --check {check}
          timeout: 1
          max-score: {points:g}
"""
        for check, points in checks
    )
    results = "".join(
        f'          {_step_id(check).upper()}_RESULTS: "${{{{steps.{_step_id(check)}.outputs.result}}}}"\n'
        for check, _ in checks
    )
    return f"""name: Autograding Tests
on: [push, workflow_dispatch, repository_dispatch]
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install the grader
        run: pip install "{requirement}"
      # Exit 1 (a check failed) goes on to score each check; 3 (the grader failed) stops here.
      - name: Grade the notebook
        timeout-minutes: 30
        run: grader github --root . --spec {spec_path} {mode} || test $? -eq 1
{steps}      - name: Report
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
{results}        with:
          runners: {",".join(_step_id(check) for check, _ in checks)}
"""


def _step_id(check: str) -> str:
    return re.sub(r"\W", "_", check)
