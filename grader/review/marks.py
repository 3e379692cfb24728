"""The manual grades of a batch, in its SQLite store beside the code's results.

Every change is one transaction, made the moment it is asked for: applying an item inserts a
row and removing it deletes that row, so two people grading the same batch at once never
overwrite each other, and a crash loses nothing committed. A grade is kept with the digest of
the answer's text: regrading the code keeps it, and a changed answer shows as ungraded beside
its earlier grade. The rubric's items are seeded from the spec; edits made while grading win.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from grader.batch.store import STORE_NAME
from grader.errors import GraderError
from grader.judge.answers import Answer, answer_to
from grader.judge.written import WrittenGrade, written_grade
from grader.spec.questions import Question, RubricItem

SCHEMA = """
CREATE TABLE IF NOT EXISTS rubric_items (
    question TEXT NOT NULL, item TEXT NOT NULL, title TEXT NOT NULL, points REAL NOT NULL,
    description TEXT NOT NULL DEFAULT '', position INTEGER NOT NULL, edited INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (question, item)
);
CREATE TABLE IF NOT EXISTS applied_items (
    submission TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL, item TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (datetime('now')), PRIMARY KEY (submission, question, answer, item)
);
CREATE TABLE IF NOT EXISTS answer_comments (
    submission TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL, comment TEXT NOT NULL,
    PRIMARY KEY (submission, question, answer)
);
CREATE TABLE IF NOT EXISTS answer_groups (
    submission TEXT NOT NULL, question TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (submission, question)
);
"""
SET_COMMENT = "INSERT OR REPLACE INTO answer_comments (submission, question, answer, comment) VALUES (?, ?, ?, ?)"
# A writer waits this long for another's transaction before giving up with an error.
BUSY_SECONDS = 30


def _write_ahead_log(connection: sqlite3.Connection) -> None:
    """Put the store in WAL mode, where readers never wait for a writer. Switching waits for no
    busy handler, so another grader's transaction is waited out here."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL").fetchone()
            return  # in WAL mode now, or a database that has none (in memory) and keeps its journal
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Marks:
    """The manual grades of the batch whose outputs are in ``folder``, for ``questions``.

    One connection, which the review app's request threads share: each use of it holds
    ``_using``, so that one request's transaction never holds another's statements (a request
    whose write fails rolls back its own, never one another request has already reported made).
    """

    def __init__(self, folder: Path, questions: Sequence[Question]) -> None:
        self.questions = {question.id: question for question in questions}
        # Re-entrant: a write reads the rubric (``item``) inside its own turn.
        self._using = threading.RLock()
        self.connection = sqlite3.connect(folder / STORE_NAME, timeout=BUSY_SECONDS, check_same_thread=False)
        _write_ahead_log(self.connection)
        with self._transaction():
            self.connection.executescript(SCHEMA)
        self._follow_the_spec(questions)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, this thread's alone until its transaction is committed or rolled back."""
        with self._using, self.connection:
            yield self.connection

    def _read(self, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        """The rows of a query, read in this thread's turn on the connection."""
        with self._using:
            return self.connection.execute(sql, parameters).fetchall()

    def _follow_the_spec(self, questions: Sequence[Question]) -> None:
        """The rubric as the spec says it now: its titles, order and descriptions, and its points
        unless they were edited while grading; an item gone from the spec goes, unless it was
        applied to some answer (it is then listed last)."""
        with self._transaction():
            self.connection.executemany(
                "INSERT INTO rubric_items (question, item, title, points, description, position) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (question, item) DO UPDATE SET title = excluded.title, "
                "description = excluded.description, position = excluded.position, "
                "points = CASE WHEN edited THEN points ELSE excluded.points END",
                [
                    (question.id, item.id, item.title, item.points, item.description, position)
                    for question in questions
                    for position, item in enumerate(question.rubric)
                ],
            )
            for question in questions:
                kept = [item.id for item in question.rubric]
                marks = ", ".join("?" * len(kept))
                self.connection.execute(
                    f"DELETE FROM rubric_items WHERE question = ? AND item NOT IN ({marks}) AND NOT EXISTS "
                    "(SELECT 1 FROM applied_items AS a WHERE a.question = rubric_items.question "
                    "AND a.item = rubric_items.item)",
                    (question.id, *kept),
                )
                self.connection.execute(
                    f"UPDATE rubric_items SET position = ? + position WHERE question = ? AND item NOT IN ({marks}) "
                    "AND position < ?",
                    (len(kept), question.id, *kept, len(kept)),
                )

    def close(self) -> None:
        with self._using:
            self.connection.close()

    def question(self, question_id: str) -> Question:
        """The question with its rubric as edited while grading."""
        try:
            question = self.questions[question_id]
        except KeyError:
            raise GraderError(f"no question {question_id!r}; the batch's questions: {sorted(self.questions)}") from None
        rows = self._read(
            "SELECT item, title, points, description FROM rubric_items WHERE question = ? ORDER BY position",
            (question_id,),
        )
        return replace(question, rubric=tuple(RubricItem(*row) for row in rows))

    def item(self, question_id: str, item_id: str) -> RubricItem:
        rubric = self.question(question_id).rubric
        found = next((item for item in rubric if item.id == item_id), None)
        if found is None:
            known = [item.id for item in rubric]
            raise GraderError(f"question {question_id} has no rubric item {item_id!r}; its items: {known}")
        return found

    def set_points(self, question_id: str, item_id: str, points: float) -> None:
        """Change an item's points: every answer it is applied to follows."""
        self.item(question_id, item_id)
        with self._transaction():
            self.connection.execute(
                "UPDATE rubric_items SET points = ?, edited = 1 WHERE question = ? AND item = ?",
                (points, question_id, item_id),
            )

    def apply(self, question_id: str, item_id: str, answers: Iterable[tuple[str, Answer]], on: bool) -> None:
        """Apply ``item_id`` to each (submission, answer), or remove it (``on`` false), in one transaction."""
        self.item(question_id, item_id)
        rows = [(submission, question_id, answer.digest, item_id) for submission, answer in answers]
        with self._transaction():
            if on:
                self.connection.executemany(
                    "INSERT OR IGNORE INTO applied_items (submission, question, answer, item) VALUES (?, ?, ?, ?)", rows
                )
            else:
                self.connection.executemany(
                    "DELETE FROM applied_items WHERE submission = ? AND question = ? AND answer = ? AND item = ?", rows
                )

    def set_comment(self, submission: str, answer: Answer, comment: str) -> None:
        with self._transaction():
            self.connection.execute(SET_COMMENT, (submission, answer.question, answer.digest, comment.strip()))

    def set_answers(self, grades: Iterable[tuple[str, Answer, Sequence[str], str]]) -> None:
        """Set each (submission, answer)'s items to exactly those given, and its comment, all in
        one transaction (a spreadsheet's import: all of it or nothing)."""
        with self._transaction():
            for submission, answer, item_ids, comment in grades:
                key = (submission, answer.question, answer.digest)
                self.connection.execute(
                    "DELETE FROM applied_items WHERE submission = ? AND question = ? AND answer = ?", key
                )
                self.connection.executemany(
                    "INSERT INTO applied_items (submission, question, answer, item) VALUES (?, ?, ?, ?)",
                    [(*key, item_id) for item_id in item_ids],
                )
                self.connection.execute(SET_COMMENT, (*key, comment.strip()))

    def move(self, submission: str, question_id: str, group: str) -> None:
        """Put an answer into the group named ``group``, whatever group was suggested for it."""
        with self._transaction():
            self.connection.execute(
                "INSERT OR REPLACE INTO answer_groups (submission, question, name) VALUES (?, ?, ?)",
                (submission, question_id, group),
            )

    def moved(self, question_id: str) -> dict[str, str]:
        """The answers someone moved, by submission, to the group they were moved to."""
        return dict(self._read("SELECT submission, name FROM answer_groups WHERE question = ?", (question_id,)))

    def grades(self, answers: Mapping[str, Sequence[Answer]]) -> dict[str, tuple[WrittenGrade, ...]]:
        """Every submission's grades, one per answer, in the questions' order."""
        questions = {question_id: self.question(question_id) for question_id in self.questions}
        # (submission, question) -> the digests of the texts graded, in order, each with its items
        # Only the rows of the submissions asked for: `grader grade` asks for one at a time.
        chosen = "submission IN (SELECT value FROM json_each(?))"
        asked = (json.dumps(list(answers)),)
        applied: dict[tuple[str, str], dict[str, list[str]]] = {}
        for submission, question, digest, item in self._read(
            f"SELECT submission, question, answer, item FROM applied_items WHERE {chosen} ORDER BY applied_at, rowid",
            asked,
        ):
            applied.setdefault((submission, question), {}).setdefault(digest, []).append(item)
        comments = {
            (submission, question, digest): comment
            for submission, question, digest, comment in self._read(
                f"SELECT submission, question, answer, comment FROM answer_comments WHERE {chosen}", asked
            )
        }
        grades: dict[str, tuple[WrittenGrade, ...]] = {}
        for submission, submitted in answers.items():
            graded = []
            for question in questions.values():
                answer = answer_to(question.id, submitted)
                items = {item.id: item for item in question.rubric}
                texts = applied.get((submission, answer.question), {})
                mine = [items[i] for i in texts.get(answer.digest, []) if i in items]
                earlier = [
                    [items[i] for i in ids if i in items] for digest, ids in texts.items() if digest != answer.digest
                ]
                comment = comments.get((submission, answer.question, answer.digest), "")
                graded.append(written_grade(question, mine, comment, earlier[-1] if earlier else None))
            grades[submission] = tuple(graded)
        return grades
