"""Who submitted which notebook, read from the layout an instructor hands the grader.

- a folder (or a list) of notebooks: each file is a student, named by its file name;
- a Canvas "Download submissions" zip or its unpacked folder: files named
  ``{lastnamefirstname}[_LATE]_{user id}_{file id}_{original name}``;
- a Moodle "Download all submissions" zip or folder: a folder per student,
  ``{Full Name}_{participant id}_assignsubmission_file[_]/``;
- an nbgrader course's ``submitted/{student id}/{assignment}/`` tree, with ``timestamp.txt``.

One notebook is graded per student: of several, the one that looks like the exercise (its
code names the spec's models), then the latest; the others, and whatever is not a notebook,
are reported, never dropped silently. Zips are unpacked as untrusted input
(``grader.ingest.archives``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from grader.errors import GraderError
from grader.ingest.archives import unpack_zip
from grader.protocol.text import name_text

Platform = Literal["folder", "canvas", "moodle", "nbgrader"]
CANVAS_FILE = re.compile(
    r"^(?P<name>[a-z0-9]*?)(?P<late>_late)?_(?P<user_id>\d+|anon_\w+?)_(?P<file_id>\d+)_(?P<original>.+)$",
    re.IGNORECASE,
)
MOODLE_FOLDER = re.compile(r"^(?P<name>.+)_(?P<participant>\d+)_assignsubmission_(?P<kind>file|onlinetext)_?$")


@dataclass(frozen=True)
class Student:
    """A student in the LMS's own terms: how its gradebook will name them."""

    name: str
    platform: Platform = "folder"
    user_id: str | None = None  # Canvas' user id; nbgrader's student id
    participant_id: str | None = None  # Moodle's participant id in the assignment
    late: bool = False
    submitted_at: str | None = None  # ISO 8601, in UTC, where the LMS records it
    file: str = ""  # the notebook's name as submitted

    def __post_init__(self) -> None:
        # Names come from file and folder names: shown as they are, never obeyed (grader.protocol.text)
        for field_name in ("name", "user_id", "participant_id", "file"):
            value = getattr(self, field_name)
            if value is not None:
                object.__setattr__(self, field_name, name_text(value))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Student:
        return cls(**data)


@dataclass(frozen=True)
class Submitted:
    """A notebook to grade: its id in the results, its file, its student."""

    id: str
    path: Path
    student: Student

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", name_text(self.id))

    @classmethod
    def of(cls, path: Path) -> Submitted:
        """A notebook handed over by itself: its file name is its student's."""
        return cls(path.stem, path, Student(path.stem, file=path.name))


@dataclass(frozen=True)
class Roster:
    submissions: tuple[Submitted, ...]
    # Notebooks and files found and not graded, each with why.
    notes: tuple[str, ...] = ()
    # What the instructor must do by hand for notebooks that are graded (a grade no gradebook
    # import can place), each naming its file.
    notices: tuple[str, ...] = ()


def read_roster(paths: Sequence[Path], unpack_into: Path, model_names: Sequence[str] = ()) -> Roster:
    """The notebooks to grade among ``paths`` (folders, notebooks, zips), one per student;
    zips are unpacked under ``unpack_into``. Raises ``GraderError`` when there is nothing to
    grade or a path is missing or unsafe."""
    submissions: list[Submitted] = []
    notes: list[str] = []
    notices: list[str] = []
    for index, path in enumerate(paths):
        if not path.exists():
            raise GraderError(
                f"{path}: no such file or folder. Name a folder of notebooks, .ipynb files or an LMS zip."
            )
        if path.is_file() and path.suffix.lower() == ".zip":
            path = unpack_zip(path, unpack_into / f"{index}-{path.stem}")
        found, found_notes = _read(path)
        submissions.extend(found)
        notes.extend(found_notes)
        notices.extend(_outside_canvas_pattern(found))
    chosen, choice_notes = _one_per_student(submissions, model_names)
    if not chosen:
        names = ", ".join(str(path) for path in paths)
        raise GraderError(f"nothing to grade: no .ipynb files in {names}.")
    # Notes name files and folders as they were found: shown, never obeyed
    return Roster(tuple(chosen), tuple(map(name_text, (*notes, *choice_notes))), tuple(map(name_text, notices)))


def _outside_canvas_pattern(found: list[Submitted]) -> list[str]:
    """In a Canvas download, the files whose names Canvas did not make (a look-alike letter, a
    line break): graded under their file name, with no Canvas ID for the import to match."""
    if not any(submitted.student.platform == "canvas" for submitted in found):
        return []
    return [
        f"{submitted.path.name!a}: its name is not in Canvas' pattern (name_userid_fileid_file.ipynb), so the "
        f"grader knows no Canvas ID for it: it is graded as {submitted.id!a}, and Canvas' import skips its row; "
        "enter its grade by hand"
        for submitted in found
        if submitted.student.platform == "folder"
    ]


def _read(path: Path) -> tuple[list[Submitted], list[str]]:
    if path.is_file():
        return ([_canvas_file(path) or Submitted.of(path)], []) if path.suffix == ".ipynb" else ([], [_ignored(path)])
    nbgrader = path if path.name == "submitted" else path / "submitted"
    if nbgrader.is_dir():
        return _nbgrader(nbgrader)
    folders = [entry for entry in sorted(path.iterdir()) if entry.is_dir() and MOODLE_FOLDER.match(entry.name)]
    if folders:
        return _moodle(path, folders)
    submissions, notes = [], []
    for entry in sorted(path.iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb" and not entry.is_symlink():
            submissions.append(_canvas_file(entry) or Submitted.of(entry))
        elif entry.is_symlink() and entry.suffix == ".ipynb":
            submissions.append(Submitted.of(entry))  # refused with its reason when it is read
        elif not entry.name.startswith("."):
            notes.append(_ignored(entry))
    return submissions, notes


def _ignored(path: Path) -> str:
    what = "a folder" if path.is_dir() else "not a notebook"
    return f"{path.name}: {what}, not graded"


def _canvas_file(path: Path) -> Submitted | None:
    match = CANVAS_FILE.match(path.name)
    if match is None:
        return None
    student = Student(
        name=match["name"],
        platform="canvas",
        user_id=match["user_id"],
        late=bool(match["late"]),
        file=match["original"],
    )
    return Submitted(f"{match['name']}_{match['user_id']}", path, student)


def _moodle(root: Path, folders: list[Path]) -> tuple[list[Submitted], list[str]]:
    submissions, notes = [], []
    for folder in folders:
        match = MOODLE_FOLDER.match(folder.name)
        assert match is not None
        notebooks = sorted(file for file in folder.rglob("*.ipynb") if file.is_file())
        if match["kind"] != "file" or not notebooks:
            notes.append(f"{folder.name}: no notebook in it, not graded")
            continue
        student = Student(name=match["name"], platform="moodle", participant_id=match["participant"])
        for notebook in notebooks:
            submissions.append(
                Submitted(f"{match['name']}_{match['participant']}", notebook, _with_file(student, notebook))
            )
    notes.extend(
        _ignored(entry) for entry in sorted(root.iterdir()) if entry not in folders and not entry.name.startswith(".")
    )
    return submissions, notes


def _nbgrader(submitted: Path) -> tuple[list[Submitted], list[str]]:
    submissions, notes = [], []
    for student_folder in sorted(entry for entry in submitted.iterdir() if entry.is_dir()):
        for assignment in sorted(entry for entry in student_folder.iterdir() if entry.is_dir()):
            notebooks = sorted(file for file in assignment.glob("*.ipynb") if file.is_file())
            if not notebooks:
                notes.append(f"{student_folder.name}/{assignment.name}: no notebook in it, not graded")
            student = Student(
                name=student_folder.name,
                platform="nbgrader",
                user_id=student_folder.name,
                submitted_at=_nbgrader_time(assignment / "timestamp.txt"),
            )
            for notebook in notebooks:
                submissions.append(Submitted(student_folder.name, notebook, _with_file(student, notebook)))
    return submissions, notes


def _with_file(student: Student, notebook: Path) -> Student:
    return Student(**{**student.to_dict(), "file": notebook.name})


def _nbgrader_time(path: Path) -> str | None:
    """nbgrader's ``2015-02-02 22:58:23.948203 UTC``, in ISO 8601; None when absent or unread."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    for layout in ("%Y-%m-%d %H:%M:%S.%f %Z", "%Y-%m-%d %H:%M:%S %Z"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC).isoformat()
        except ValueError:
            continue
    return None


def _one_per_student(submissions: list[Submitted], model_names: Sequence[str]) -> tuple[list[Submitted], list[str]]:
    """The notebook graded for each student, in the order they were found, and why the
    others were not."""
    by_student: dict[str, list[Submitted]] = {}
    for submitted in submissions:
        by_student.setdefault(_student_key(submitted), []).append(submitted)
    chosen, notes = [], []
    for key, candidates in by_student.items():
        if len(candidates) == 1 or candidates[0].student.platform == "folder":
            chosen.extend(candidates)  # plain files with one name: told apart as duplicates later
            continue
        best = max(
            candidates, key=lambda candidate: (_looks_like_the_exercise(candidate.path, model_names), _order(candidate))
        )
        chosen.append(best)
        folders = sorted({candidate.id for candidate in candidates})

        others = ", ".join(_named(candidate, folders) for candidate in candidates if candidate is not best)
        who = best.id if len(folders) == 1 else f"{key} ({len(folders)} folders name this participant)"
        graded = _named(best, folders)
        notes.append(f"{who}: graded {graded} (the latest that looks like the exercise); not graded: {others}")
    return chosen, notes


def _named(candidate: Submitted, folders: list[str]) -> str:
    """A candidate notebook by its file name, and its folder's where its student has several."""
    file = candidate.student.file or candidate.path.name
    return file if len(folders) == 1 else f"{file} of {candidate.id}"


def _student_key(submitted: Submitted) -> str:
    """Who a notebook is of: a Moodle participant by their id, whatever their folder's name."""
    participant = submitted.student.participant_id
    return f"Participant {participant}" if submitted.student.platform == "moodle" and participant else submitted.id


def _looks_like_the_exercise(path: Path, model_names: Sequence[str]) -> int:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return 0
    return sum(name in text for name in model_names)


def _order(candidate: Submitted) -> tuple[int, float, str]:
    """Later submissions sort higher: Canvas numbers its files as they come; elsewhere the
    file's time (kept when a zip is unpacked) tells."""
    match = CANVAS_FILE.match(candidate.path.name)
    file_id = int(match["file_id"]) if match and match["file_id"].isdigit() else 0
    return file_id, candidate.path.stat().st_mtime, candidate.path.name


def pick_notebook(folder: Path, model_names: Sequence[str] = ()) -> tuple[Path | None, list[str]]:
    """The one notebook of one student's submission folder (an autograder's): of several, the
    one that looks like the exercise, then the latest; and what else was there, not graded."""
    notebooks = sorted(
        path for path in folder.rglob("*.ipynb") if path.is_file() and ".ipynb_checkpoints" not in path.parts
    )
    if not notebooks:
        return None, []
    best = max(notebooks, key=lambda path: (_looks_like_the_exercise(path, model_names), path.stat().st_mtime))
    others = [str(path.relative_to(folder)) for path in notebooks if path != best]
    return best, [f"also submitted, not graded: {', '.join(others)}"] if others else []
