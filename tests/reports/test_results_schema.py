"""results.json's published JSON Schema (``grader/reports/results.schema.json``, on the
documentation site): valid, its enumerations the code's own, followed by what the grader
writes, and strict enough to refuse what it does not write. Real grading runs are validated
where they are made (``tests/judge/test_grading_kernel.py``, the LMS downloads, the review's
regrade, the GitHub entry point)."""

from __future__ import annotations

import json
from typing import Any, get_args, get_type_hints

import jsonschema
import nbformat
import pytest

from grader.ingest.roster import Platform
from grader.judge.answers import FoundBy
from grader.judge.checks import Status
from grader.judge.results import FAULT_OF_STATUS, GradeRun, SubmissionStatus
from grader.judge.written import WrittenStatus
from grader.reports import RESULTS_SCHEMA
from grader.reports.outputs import write_page, write_summaries
from grader.spec.exercise import load_spec
from grader.spec.questions import Scoring, Stance
from tests.conftest import assert_follows_results_schema
from tests.reports.test_outputs import load_run
from tests.review.conftest import write_batch

SCHEMA = json.loads(RESULTS_SCHEMA.read_text())


def enum(*path: str) -> set[Any]:
    node = SCHEMA
    for key in path:
        node = node[key]
    return set(node["enum"])


def test_the_schema_is_valid_and_its_enumerations_are_the_codes():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert enum("$defs", "submission", "properties", "status") == set(get_args(SubmissionStatus))
    assert enum("$defs", "submission", "properties", "fault") == set(FAULT_OF_STATUS.values())
    assert enum("$defs", "check", "properties", "status") == set(get_args(Status))
    assert enum("properties", "mode") == set(get_args(get_type_hints(GradeRun)["mode"]))
    assert enum("$defs", "student", "properties", "platform") == set(get_args(Platform))
    assert enum("$defs", "answer", "properties", "found_by") == set(get_args(FoundBy))
    assert enum("$defs", "question", "properties", "scoring") == set(get_args(Scoring))
    assert enum("$defs", "question", "properties", "stance") == {*get_args(Stance), None}
    assert enum("$defs", "written_grade", "properties", "status") == set(get_args(WrittenStatus))


@pytest.mark.parametrize("fixture", ["full_run", "quick_run"])
def test_results_json_written_from_real_runs_follows_the_schema(tmp_path, fixture):
    graded = load_run(fixture)  # results of real grading runs, kept as fixtures
    spec = load_spec()
    for result in graded.submissions:
        write_page(result, nbformat.writes(nbformat.v4.new_notebook()), graded, spec, tmp_path)
        assert_follows_results_schema(result.to_dict(), "submission")  # what `grader check --json` prints
    write_summaries(graded, spec, tmp_path)
    assert_follows_results_schema(json.loads((tmp_path / "results.json").read_text()))


def test_a_batch_with_written_questions_follows_the_schema(tmp_path):
    document = json.loads((write_batch(tmp_path, 3) / "results.json").read_text())
    assert document["questions"] and document["submissions"][0]["answers"]
    assert_follows_results_schema(document)


@pytest.mark.parametrize(
    ("change", "at"),
    [
        (lambda d: d["submissions"][0].update(status="passed"), "status"),
        (lambda d: d["submissions"][0].update(grade=3), "grade"),
        (lambda d: d["submissions"][0]["checks"][0].update(points="3"), "points"),
        (lambda d: d.pop("mode"), "mode"),
    ],
)
def test_what_the_grader_does_not_write_is_refused(tmp_path, change, at):
    graded = load_run("full_run")
    write_summaries(graded, load_spec(), tmp_path)
    document = json.loads((tmp_path / "results.json").read_text())
    change(document)
    with pytest.raises(jsonschema.ValidationError, match=at):
        assert_follows_results_schema(document)
