"""Manual grades in the batch's store: applied and removed per answer, rubric edits followed by
every answer, a changed answer ungraded with its earlier grade, nothing lost between two
people grading at once."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest

from grader.errors import GraderError
from grader.judge.answers import Answer
from grader.judge.written import question_points
from grader.review.batch import ReviewBatch
from grader.review.marks import Marks
from tests.review.conftest import SPEC

Q1 = SPEC.questions[0]


def test_items_applied_give_points_and_removing_one_takes_them_back(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    answer = batch.answer("student00", "q1")
    marks.apply("q1", "compares-their-accuracy", [("student00", answer)], on=True)
    marks.apply("q1", "picks-one-for-production-with-a-reason", [("student00", answer)], on=True)
    grade = marks.grades(batch.answers())["student00"][0]
    assert (grade.status, grade.points) == ("graded", 2.0)
    marks.apply("q1", "compares-their-accuracy", [("student00", answer)], on=False)
    assert marks.grades(batch.answers())["student00"][0].points == 1.0
    assert marks.grades(batch.answers())["student01"][0].status == "ungraded"


def test_editing_an_items_points_changes_every_answer_it_is_applied_to(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    members = [(s, batch.answer(s, "q1")) for s in ("student00", "student01", "student02")]
    marks.apply("q1", "compares-their-accuracy", members, on=True)
    marks.set_points("q1", "compares-their-accuracy", 0.5)
    grades = marks.grades(batch.answers())
    assert [grades[s][0].points for s, _ in members] == [0.5, 0.5, 0.5]
    # Kept in the store: a new session reads the edited rubric, not the spec's.
    assert Marks(batch_folder, batch.questions).item("q1", "compares-their-accuracy").points == 0.5


def test_a_changed_answer_is_ungraded_again_and_shows_its_earlier_grade(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    marks.apply("q1", "compares-their-accuracy", [("student00", batch.answer("student00", "q1"))], on=True)
    resubmitted = {"student00": (Answer("q1", "A new text."), *batch.answers()["student00"][1:])}
    grade = marks.grades(resubmitted)["student00"][0]
    assert (grade.status, grade.points, grade.earlier_points) == ("changed", None, 1.0)


def test_two_graders_at_once_lose_nothing(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    items = [item.id for item in Q1.rubric[:3]]

    def grade_all(item: str) -> None:
        marks = Marks(batch_folder, batch.questions)  # a connection of its own, as a second grader has
        for submission in batch.submissions:
            marks.apply("q1", item, [(submission, batch.answer(submission, "q1"))], on=True)
        marks.close()

    threads = [threading.Thread(target=grade_all, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grades = Marks(batch_folder, batch.questions).grades(batch.answers())
    assert all(len(grades[s][0].items) == 3 for s in batch.submissions)


def test_points_stay_within_the_question_and_negative_scoring_starts_from_full():
    accuracy, size, picks, contradicted, _ = Q1.rubric
    assert question_points(Q1, [accuracy, size, picks]) == 3
    assert question_points(Q1, [contradicted]) == 0  # not below 0
    negative = replace(Q1, scoring="negative")
    assert question_points(negative, [contradicted]) == 2


def test_an_unknown_item_or_question_is_an_error_that_names_the_known_ones(batch_folder):
    marks = Marks(batch_folder, SPEC.questions)
    with pytest.raises(GraderError, match=r"no rubric item 'nope'.*compares-their-accuracy"):
        marks.apply("q1", "nope", [], on=True)
    with pytest.raises(GraderError, match="no question 'q9'"):
        marks.question("q9")


def test_the_rubric_follows_the_spec_except_points_edited_while_grading(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    accuracy, size, picks, contradicted, no_answer = Q1.rubric
    marks.set_points("q1", accuracy.id, 0.5)
    marks.apply("q1", contradicted.id, [("student00", batch.answer("student00", "q1"))], on=True)
    marks.close()
    # The spec changes: new points and title for one item, two items dropped (one of them applied), one added.
    reworded = replace(size, title="Compares their size", points=2)
    added = replace(picks, id="names-a-trade-off", title="Names a trade-off")
    edited_spec = replace(Q1, rubric=(accuracy, reworded, added, no_answer))
    marks = Marks(batch_folder, (edited_spec, *batch.questions[1:]))
    rubric = {item.id: item for item in marks.question("q1").rubric}
    assert rubric[accuracy.id].points == 0.5  # edited while grading: kept
    assert (rubric[size.id].title, rubric[size.id].points) == ("Compares their size", 2)
    assert added.id in rubric and picks.id not in rubric  # dropped and never applied: gone
    assert list(rubric)[-1] == contradicted.id  # dropped but applied to an answer: kept, listed last


def test_a_notebook_without_answers_gets_an_ungraded_empty_answer_per_question(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    grades = marks.grades({"invalid": ()})["invalid"]
    assert [(grade.question, grade.status) for grade in grades] == [
        ("q1", "ungraded"),
        ("q2", "ungraded"),
        ("q3", "ungraded"),
    ]
    marks.apply("q1", "no-answer", [("invalid", Answer("q1", ""))], on=True)
    assert marks.grades({"invalid": ()})["invalid"][0].points == 0


def test_a_write_that_fails_in_one_thread_never_rolls_back_another_threads_write(batch_folder):
    """The review app's request threads share one Marks: a request whose write fails (the store
    locked by `grader grade`, here a duplicate item) rolls back its own statements only."""
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    item = Q1.rubric[0].id
    first_written = threading.Event()
    failed_write_done = threading.Event()

    def grades_written_slowly() -> Iterator[tuple[str, Answer, list[str], str]]:
        yield "student00", batch.answer("student00", "q1"), [item], ""
        first_written.set()  # the first request is inside its transaction now
        failed_write_done.wait(timeout=1)  # the other request fails meanwhile, if it can run at all
        yield "student01", batch.answer("student01", "q1"), [item], ""

    failures: list[Exception] = []

    def failing_write() -> None:
        try:
            marks.set_answers([("student02", batch.answer("student02", "q1"), [item, item], "")])
        except sqlite3.IntegrityError as error:
            failures.append(error)
        failed_write_done.set()

    first = threading.Thread(target=marks.set_answers, args=(grades_written_slowly(),))
    first.start()
    assert first_written.wait(timeout=10)
    second = threading.Thread(target=failing_write)
    second.start()
    first.join(timeout=10)
    second.join(timeout=10)
    assert len(failures) == 1  # the second write did fail
    grades = Marks(batch_folder, batch.questions).grades(batch.answers())
    assert [len(grades[s][0].items) for s in ("student00", "student01", "student02")] == [1, 1, 0]
