"""Who submitted which notebook: plain folders, Canvas and Moodle downloads (zips or
folders), nbgrader trees; one notebook per student, the rest reported; zips unpacked safely."""

from __future__ import annotations

import os
import stat
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.ingest.archives import ZipLimits, unpack_zip
from grader.ingest.roster import Student, pick_notebook, read_roster

MODELS = ("model_1", "model_2", "model_3")
EXERCISE = '{"cells": [{"cell_type": "code", "source": "model_1 = 1\\nmodel_2 = 2\\nmodel_3 = 3"}]}'
SCRATCH = '{"cells": [{"cell_type": "code", "source": "print(1)"}]}'


def write(path: Path, text: str = EXERCISE, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as opened:
        for path in sorted(folder.rglob("*")):
            opened.write(path, path.relative_to(folder).as_posix())
    return archive


def students(roster) -> dict[str, tuple[Student, str]]:
    return {item.id: (item.student, item.path.name) for item in roster.submissions}


def test_a_folder_and_files_are_each_a_student_and_the_rest_is_reported(tmp_path: Path) -> None:
    for name in ("b.ipynb", "a.ipynb", "notes.txt"):
        write(tmp_path / "class" / name)
    (tmp_path / "class" / "drafts").mkdir()
    extra = write(tmp_path / "late.ipynb")
    roster = read_roster([tmp_path / "class", extra], tmp_path / "unpacked", MODELS)
    assert [item.id for item in roster.submissions] == ["a", "b", "late"]
    assert roster.submissions[0].student == Student("a", file="a.ipynb")
    assert roster.notes == ("drafts: a folder, not graded", "notes.txt: not a notebook, not graded")


def test_nothing_to_grade_and_missing_paths_say_what_to_hand_over(tmp_path: Path) -> None:
    (tmp_path / "void").mkdir()
    with pytest.raises(GraderError, match="nothing to grade"):
        read_roster([tmp_path / "void"], tmp_path / "unpacked")
    with pytest.raises(GraderError, match=r"no such file or folder.*LMS zip"):
        read_roster([tmp_path / "missing"], tmp_path / "unpacked")


def test_a_canvas_zip_maps_files_to_students_late_flags_and_the_latest_resubmission(tmp_path: Path) -> None:
    download = tmp_path / "download"
    write(download / "doejane_48213_9911830_mnist.ipynb")
    write(download / "doejane_48213_9911901_mnist-1.ipynb")  # resubmitted: a later file id
    write(download / "smithjohn_LATE_48214_9911835_mnist.ipynb")
    write(download / "leeann_48215_9911840_scratch.ipynb", SCRATCH)
    write(download / "leeann_48215_9911841_homework.ipynb")  # the one that is the exercise
    write(download / "roeri_48216_text.html", "<p>see attached</p>")
    roster = read_roster([zip_folder(download, tmp_path / "course-mnist submissions.zip")], tmp_path / "u", MODELS)
    found = students(roster)
    assert sorted(found) == ["doejane_48213", "leeann_48215", "smithjohn_48214"]
    jane, jane_file = found["doejane_48213"]
    assert (jane.name, jane.platform, jane.user_id, jane.late, jane.file) == (
        "doejane", "canvas", "48213", False, "mnist-1.ipynb"
    )  # fmt: skip
    assert jane_file == "doejane_48213_9911901_mnist-1.ipynb"
    assert found["smithjohn_48214"][0].late is True
    assert found["leeann_48215"][0].file == "homework.ipynb"
    assert any("doejane_48213: graded mnist-1.ipynb" in note and "mnist.ipynb" in note for note in roster.notes)
    assert any("leeann_48215: graded homework.ipynb" in note and "scratch.ipynb" in note for note in roster.notes)
    assert "roeri_48216_text.html: not a notebook, not graded" in roster.notes


@pytest.mark.parametrize("zipped", [False, True])
@pytest.mark.parametrize("trailing", ["", "_"])  # Moodle 4.1 and later; Moodle 3.1 to 4.0
def test_a_moodle_download_maps_folders_to_participants(tmp_path: Path, zipped: bool, trailing: str) -> None:
    download = tmp_path / "download"
    write(download / f"Jane Doe_1234567_assignsubmission_file{trailing}" / "mnist.ipynb", mtime=1_800_000_000)
    write(download / f"Jane Doe_1234567_assignsubmission_file{trailing}" / "mnist (2).ipynb", mtime=1_800_000_100)
    write(download / f"John Smith_1234568_assignsubmission_file{trailing}" / "sub" / "hw.ipynb")
    write(download / f"Ann Lee_1234569_assignsubmission_onlinetext{trailing}" / "onlinetext.html", "<p>hi</p>")
    path = zip_folder(download, tmp_path / "MNIST-Assignment-42.zip") if zipped else download
    roster = read_roster([path], tmp_path / "u", MODELS)
    found = students(roster)
    assert sorted(found) == ["Jane Doe_1234567", "John Smith_1234568"]
    jane = found["Jane Doe_1234567"][0]
    assert (jane.name, jane.platform, jane.participant_id, jane.file) == (
        "Jane Doe",
        "moodle",
        "1234567",
        "mnist (2).ipynb",
    )
    assert found["John Smith_1234568"][0].file == "hw.ipynb"
    assert any(note.startswith("Ann Lee_1234569_assignsubmission_onlinetext") for note in roster.notes)
    assert any("graded mnist (2).ipynb" in note and "mnist.ipynb" in note for note in roster.notes)


def test_two_moodle_folders_of_one_participant_are_one_student_and_the_other_is_named(tmp_path: Path) -> None:
    """A folder renamed to start a formula does not give its participant a second row."""
    download = tmp_path / "download"
    write(download / "Jane Doe_1234567_assignsubmission_file" / "mnist.ipynb", mtime=1_800_000_000)
    write(download / '=HYPERLINK("x")_1234567_assignsubmission_file' / "mnist.ipynb", mtime=1_800_000_100)
    roster = read_roster([download], tmp_path / "u", MODELS)
    assert [item.student.participant_id for item in roster.submissions] == ["1234567"]
    note = next(note for note in roster.notes if note.startswith("Participant 1234567"))
    assert "2 folders name this participant" in note
    assert 'graded mnist.ipynb of =HYPERLINK("x")_1234567' in note
    assert "not graded: mnist.ipynb of Jane Doe_1234567" in note


def test_a_canvas_file_named_outside_canvas_pattern_is_graded_and_named_for_the_instructor(tmp_path: Path) -> None:
    download = tmp_path / "download"
    write(download / "doejane_48213_9911830_mnist.ipynb")
    write(download / "smithj\u043ehn_48214_9911835_mnist.ipynb")  # a Cyrillic o: \w matches it, the pattern does not
    write(download / "leeann_48215_\n_9911840_mnist.ipynb")
    roster = read_roster([zip_folder(download, tmp_path / "submissions.zip")], tmp_path / "u", MODELS)
    assert {item.student.platform for item in roster.submissions} == {"canvas", "folder"}
    assert len(roster.notices) == 2
    assert all("not in Canvas' pattern" in notice and "enter its grade by hand" in notice for notice in roster.notices)
    assert any("'smithj\\u043ehn_48214_9911835_mnist.ipynb'" in notice for notice in roster.notices)
    assert any("'leeann_48215_\\n_9911840_mnist.ipynb'" in notice for notice in roster.notices)
    plain = tmp_path / "plain"
    write(plain / "alice.ipynb")
    assert read_roster([plain], tmp_path / "u2", MODELS).notices == ()  # no Canvas file: no Canvas pattern to meet


def test_an_nbgrader_tree_maps_student_ids_and_submission_times(tmp_path: Path) -> None:
    course = tmp_path / "course"
    write(course / "submitted" / "jdoe" / "mnist" / "mnist.ipynb")
    (course / "submitted" / "jdoe" / "mnist" / "timestamp.txt").write_text("2026-11-02 22:58:23.948203 UTC\n")
    write(course / "submitted" / "asmith" / "mnist" / "mnist.ipynb")
    (course / "submitted" / "nobody" / "mnist").mkdir(parents=True)
    for path in (course, course / "submitted"):  # the course folder or its submitted/ folder
        roster = read_roster([path], tmp_path / "u", MODELS)
        found = students(roster)
        assert sorted(found) == ["asmith", "jdoe"]
        jdoe = found["jdoe"][0]
        assert (jdoe.platform, jdoe.user_id, jdoe.submitted_at) == (
            "nbgrader",
            "jdoe",
            "2026-11-02T22:58:23.948203+00:00",
        )
        assert found["asmith"][0].submitted_at is None
        assert "nobody/mnist: no notebook in it, not graded" in roster.notes


def test_an_autograder_folder_gives_its_exercise_notebook_and_names_the_others(tmp_path: Path) -> None:
    write(tmp_path / "scratch.ipynb", SCRATCH)
    write(tmp_path / "work" / "mnist.ipynb")
    write(tmp_path / ".ipynb_checkpoints" / "mnist-checkpoint.ipynb")
    chosen, notes = pick_notebook(tmp_path, MODELS)
    assert chosen == tmp_path / "work" / "mnist.ipynb"
    assert notes == ["also submitted, not graded: scratch.ipynb"]
    assert pick_notebook(tmp_path / "work" / "missing", MODELS) == (None, [])


# -- zips are untrusted -------------------------------------------------------------------


def _zip(tmp_path: Path, entries: dict[str, bytes], link: str | None = None) -> Path:
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as opened:
        for name, data in entries.items():
            opened.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            opened.writestr(info, "/etc/passwd")
    return archive


@pytest.mark.parametrize(
    ("entries", "link", "limits", "message"),
    [
        ({"../evil.ipynb": b"{}"}, None, ZipLimits(), r"'\.\./evil\.ipynb' would be written outside the folder"),
        ({"/etc/evil.ipynb": b"{}"}, None, ZipLimits(), "would be written outside the folder"),
        ({"a.ipynb": b"{}"}, "b.ipynb", ZipLimits(), "'b.ipynb' is a symbolic link"),
        ({f"{n}.ipynb": b"{}" for n in range(5)}, None, ZipLimits(files=4), "holds 5 files; at most 4"),
        ({"a.ipynb": b"x" * 5000}, None, ZipLimits(total_bytes=4000), "unpacks to 5,000 bytes; at most 4,000"),
        ({"a.ipynb": b"x" * 5000}, None, ZipLimits(file_bytes=4000), "a.ipynb is 5,000 bytes; at most 4,000 per file"),
        ({"bomb.ipynb": b"\0" * 3_000_000}, None, ZipLimits(), "bomb.ipynb compresses .* times.*zip bomb"),
    ],
)
def test_an_unsafe_zip_is_refused_whole_with_the_entry_and_what_to_do(
    tmp_path: Path, entries: dict[str, bytes], link: str | None, limits: ZipLimits, message: str
) -> None:
    archive = _zip(tmp_path, entries, link)
    with pytest.raises(GraderError, match=message) as refused:
        unpack_zip(archive, tmp_path / "unpacked", limits)
    assert "Nothing was unpacked" in str(refused.value)
    assert not (tmp_path / "unpacked").exists()
    assert not (tmp_path / "evil.ipynb").exists()


def test_a_file_that_is_not_a_zip_says_to_download_it_again(tmp_path: Path) -> None:
    archive = tmp_path / "submissions.zip"
    archive.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(GraderError, match=r"not a readable zip file.*Download it again"):
        read_roster([archive], tmp_path / "unpacked")


def test_unpacking_keeps_each_files_time_so_the_latest_is_known(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr(zipfile.ZipInfo("x.ipynb", date_time=(2026, 11, 2, 10, 30, 0)), "{}")
    unpacked = unpack_zip(archive, tmp_path / "u")
    assert (unpacked / "x.ipynb").stat().st_mtime == datetime(2026, 11, 2, 10, 30).timestamp()
