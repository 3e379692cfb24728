"""The written points reach every output the code's points reach: the gradebooks (blank until
every answer is graded, unless partial), checks.csv, Moodle's feedback, results.json, the
student's page and the class page."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import datetime

from grader.ingest.roster import Student
from grader.judge.results import GradeRun
from grader.judge.written import written_grade
from grader.reports.gradebooks import Assignment, checks_csv, gradebook_csv, moodle_worksheet
from grader.reports.pages import index_page, submission_page
from tests.review.conftest import SPEC, submission

Q1, Q2, Q3 = SPEC.questions


def run_with(written, partial=False) -> GradeRun:
    jane = Student("Jane Doe", "moodle", participant_id="1234567")
    results = (dataclasses.replace(submission(0), student=jane), submission(1))
    return GradeRun("test", "full", SPEC.name, results, 15.0, (), SPEC.questions, written, partial)


def all_graded() -> dict:
    return {
        "student00": (
            written_grade(Q1, Q1.rubric[:3], "Well argued."),
            written_grade(Q2, Q2.rubric[:1]),
            written_grade(Q3, Q3.rubric[-1:]),  # "No answer": graded, 0 points
        ),
        "student01": (written_grade(Q1, Q1.rubric[:1]), written_grade(Q2, []), written_grade(Q3, [])),
    }


def gradebook_rows(run: GradeRun) -> list[list[str]]:
    return list(csv.reader(io.StringIO(gradebook_csv(run, Assignment("MNIST")))))


def test_the_total_is_blank_until_every_answer_is_graded_then_code_and_written_points():
    rows = gradebook_rows(run_with(all_graded()))
    assert rows[1][-1] == "24"  # 15 for the code, 3 questions of 3
    assert rows[2][-1] == "14"  # student00: 10 + 3 + 1 + 0
    assert rows[3][-1] == ""  # student01: two answers ungraded


def test_partial_gives_the_code_points_alone():
    rows = gradebook_rows(run_with(all_graded(), partial=True))
    assert (rows[1][-1], rows[2][-1], rows[3][-1]) == ("15", "10", "11")


def test_checks_csv_moodle_and_results_json_carry_the_written_points():
    run = run_with(all_graded())
    rows = list(csv.DictReader(io.StringIO(checks_csv(run))))
    assert (rows[0]["q1"], rows[0]["q3"], rows[0]["total"]) == ("3", "0", "14")
    assert (rows[1]["q2"], rows[1]["total"]) == ("ungraded", "")
    moodle = list(csv.DictReader(io.StringIO(moodle_worksheet(run, datetime(2026, 12, 2)))))
    assert (moodle[0]["Grade"], moodle[0]["Maximum Grade"]) == ("14", "24")
    assert "q1: 3/3 (Compares their accuracy (+1)" in moodle[0]["Feedback comments"]
    assert "Well argued." in moodle[0]["Feedback comments"]
    document = json.loads(json.dumps(run.to_dict()))
    assert document["max_total"] == 24 and document["submissions"][0]["total"] == 14
    assert document["submissions"][0]["written"][0]["items"][0]["id"] == "compares-their-accuracy"


def test_the_students_page_and_the_class_page_show_the_written_grades():
    run = run_with(all_graded())
    page = submission_page(run.submissions[0], run, SPEC, None)
    assert "Written answers" in page and "With the written answers: <strong>14 / 24</strong>" in page
    assert "Well argued." in page and "Compares their accuracy (+1)" in page
    other = submission_page(run.submissions[1], run, SPEC, None)
    assert "Not graded by hand yet: q2, q3" in other
    index = index_page(run, SPEC)
    assert "Written answers" in index and "<td>2 of 2</td>" in index and "<td>1 of 2</td>" in index
    assert 'alt="Points given for q1, as a histogram"' in index
