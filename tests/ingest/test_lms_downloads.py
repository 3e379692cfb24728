"""A Canvas zip, a Moodle download and an nbgrader tree of the sample notebooks grade into the
right students, and each LMS's gradebook names them in its own terms. The samples were graded
once by the ``graded_samples`` fixture: these runs start from its results store, so each
notebook is reused, not run again, and named after the student the layout says submitted it."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.batch.store import STORE_NAME
from grader.cli import cli
from tests.conftest import ROOT, assert_follows_results_schema

SAMPLES = sorted((ROOT / "submissions").glob("*.ipynb"))
# Each sample as one student's submission: (Canvas name and user id, Moodle full name and participant id, nbgrader id)
STUDENTS = {
    "correct_other_spellings": (("doejane", "48213"), ("Jane Doe", "1234567"), "jdoe"),
    "crashes": (("smithjohn", "48214"), ("John Smith", "1234568"), "jsmith"),
    "wrong_architecture": (("leeann", "48215"), ("Ann Lee", "1234569"), "alee"),
}


def _grade(graded_samples: Path, tmp_path: Path, mnist_path: Path, *arguments: str) -> tuple[Path, dict]:
    out = tmp_path / "reports"
    out.mkdir()
    shutil.copy(graded_samples / STORE_NAME, out / STORE_NAME)
    # --partial: the gradebooks' totals are the code's points (the written answers are ungraded).
    outcome = CliRunner().invoke(
        cli,
        ["grade", *arguments, "--out", str(out), "--quick", "--data", str(mnist_path), "--jobs", "1", "--partial"],
    )
    assert outcome.exit_code == 0, outcome.output
    assert f"Reused {len(SAMPLES)} earlier results" in outcome.output
    document = json.loads((out / "results.json").read_text())
    assert_follows_results_schema(document)  # students in the LMS's terms included
    return out, {entry["id"]: entry for entry in document["submissions"]}


def _scores(graded_samples: Path) -> dict[str, float]:
    document = json.loads((graded_samples / "results.json").read_text())
    return {entry["id"]: entry["score"] for entry in document["submissions"]}


def test_a_canvas_zip_grades_into_its_students_and_canvas_gradebook(
    graded_samples: Path, tmp_path: Path, mnist_path: Path
) -> None:
    archive = tmp_path / "mnist submissions.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        for number, sample in enumerate(SAMPLES):
            (name, user_id), _, _ = STUDENTS[sample.stem]
            late = "_LATE" if sample.stem == "crashes" else ""
            opened.write(sample, f"{name}{late}_{user_id}_{990000 + number}_{sample.name}")
    options = ["--canvas-assignment", "MNIST", "--canvas-assignment-id", "77"]
    out, results = _grade(graded_samples, tmp_path, mnist_path, str(archive), *options)
    expected_scores = _scores(graded_samples)
    gradebook = list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text())))
    assert gradebook[0]["Student"] == "    Points Possible"
    by_user = {row["ID"]: row for row in gradebook[1:]}
    for sample, ((name, user_id), _, _) in STUDENTS.items():
        result = results[f"{name}_{user_id}"]
        assert result["student"]["name"] == name and result["student"]["file"] == f"{sample}.ipynb"
        assert result["student"]["late"] is (sample == "crashes")
        assert float(by_user[user_id]["MNIST (77)"]) == expected_scores[sample]
        assert by_user[user_id]["Student"] == name
    assert not (out / "moodle_grades.csv").exists()


@pytest.mark.parametrize("zipped", [True, False])
def test_a_moodle_download_grades_into_its_participants_and_the_moodle_worksheet(
    graded_samples: Path, tmp_path: Path, mnist_path: Path, zipped: bool
) -> None:
    download = tmp_path / "download"
    for sample in SAMPLES:
        _, (name, participant), _ = STUDENTS[sample.stem]
        folder = download / f"{name}_{participant}_assignsubmission_file"
        folder.mkdir(parents=True)
        shutil.copy(sample, folder / "MNIST homework.ipynb")
    path = download
    if zipped:
        path = Path(shutil.make_archive(str(tmp_path / "course-MNIST-12"), "zip", download))
    out, results = _grade(graded_samples, tmp_path, mnist_path, str(path))
    expected_scores = _scores(graded_samples)
    worksheet = {row["Identifier"]: row for row in csv.DictReader(io.StringIO((out / "moodle_grades.csv").read_text()))}
    for sample, (_, (name, participant), _) in STUDENTS.items():
        assert results[f"{name}_{participant}"]["student"]["participant_id"] == participant
        row = worksheet[f"Participant {participant}"]
        assert row["Full name"] == name
        assert float(row["Grade"]) == expected_scores[sample]
        assert row["Feedback comments"].startswith(f"{expected_scores[sample]:g}/")
    assert "Every check passed." not in worksheet["Participant 1234569"]["Feedback comments"]  # wrong_architecture


def test_an_nbgrader_tree_grades_into_its_student_ids(graded_samples: Path, tmp_path: Path, mnist_path: Path) -> None:
    for sample in SAMPLES:
        *_, student = STUDENTS[sample.stem]
        folder = tmp_path / "course" / "submitted" / student / "mnist"
        folder.mkdir(parents=True)
        shutil.copy(sample, folder / "mnist.ipynb")
        (folder / "timestamp.txt").write_text("2026-11-02 22:58:23.948203 UTC\n")
    out, results = _grade(graded_samples, tmp_path, mnist_path, str(tmp_path / "course"))
    expected_scores = _scores(graded_samples)
    for sample, (*_, student) in STUDENTS.items():
        assert results[student]["score"] == expected_scores[sample]
        assert results[student]["student"]["submitted_at"] == "2026-11-02T22:58:23.948203+00:00"
    gradebook = list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text())))
    assert {row["SIS Login ID"] for row in gradebook[1:]} == {"jdoe", "jsmith", "alee"}
