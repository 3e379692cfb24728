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
from grader.judge.results import (
    FAULT_OF_STATUS,
    RESULTS_SCHEMA_VERSION,
    GradeRun,
    ModelRecord,
    SubmissionResult,
    SubmissionStatus,
)
from grader.judge.written import WrittenStatus
from grader.reports import RESULTS_SCHEMA
from grader.reports.outputs import write_page, write_summaries
from grader.spec.exercise import METRICS_BY_KEY, load_spec
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
    assert enum("$defs", "model", "properties", "metric") == set(METRICS_BY_KEY)
    assert SCHEMA["properties"]["schema_version"]["const"] == RESULTS_SCHEMA_VERSION
    measurements = {f"{side}_{metric}" for metric in METRICS_BY_KEY for side in ("test", "train")}
    assert measurements <= set(SCHEMA["$defs"]["model"]["properties"])


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


def measured_run() -> GradeRun:
    """A classifier's submission and a regression's, each model measured in its exercise's metric."""
    classifier = ModelRecord(None, test_value=0.9761, train_value=0.9812, metric="accuracy")
    regression = ModelRecord(None, test_value=46.12, train_value=40.5, metric="mean_absolute_error")
    results = (
        SubmissionResult("digits", "digits.ipynb", "graded", 3.0, 3.0, (), models={"model_1": classifier}),
        SubmissionResult("diabetes", "diabetes.ipynb", "graded", 3.0, 3.0, (), models={"regressor": regression}),
    )
    return GradeRun("test", "full", "two exercises", results, 3.0)


def test_each_model_holds_its_measurements_under_its_metric_s_name_and_the_schema_takes_both():
    document = json.loads(json.dumps(measured_run().to_dict()))
    assert_follows_results_schema(document)
    assert document["schema_version"] == RESULTS_SCHEMA_VERSION
    classifier, regression = (submission["models"] for submission in document["submissions"])
    assert classifier["model_1"]["metric"] == "accuracy"
    assert (classifier["model_1"]["test_accuracy"], classifier["model_1"]["train_accuracy"]) == (0.9761, 0.9812)
    assert not {"test_mean_absolute_error", "train_mean_absolute_error"} & set(classifier["model_1"])
    assert regression["regressor"]["metric"] == "mean_absolute_error"
    assert regression["regressor"]["test_mean_absolute_error"] == 46.12
    assert regression["regressor"]["train_mean_absolute_error"] == 40.5
    assert not {"test_accuracy", "train_accuracy"} & set(regression["regressor"])  # no error read as an accuracy
    read = [SubmissionResult.from_dict(submission) for submission in document["submissions"]]
    assert tuple(read) == measured_run().submissions


@pytest.mark.parametrize(
    "change",
    [
        lambda model: model.update(test_accuracy=model.pop("test_mean_absolute_error")),  # an error as an accuracy
        lambda model: model.pop("train_mean_absolute_error"),
        lambda model: model.update(test_accuracy=None, train_accuracy=None),  # both names
        lambda model: model.update(metric="r2"),
        lambda model: model.pop("metric"),
    ],
    ids=["error-as-accuracy", "one-missing", "both", "unknown-metric", "no-metric"],
)
def test_a_measurement_not_named_by_its_metric_is_refused(change):
    document = measured_run().to_dict()
    change(document["submissions"][1]["models"]["regressor"])
    with pytest.raises(jsonschema.ValidationError):
        assert_follows_results_schema(document)


def test_a_submission_of_results_json_before_schema_version_2_is_read_its_measurement_an_accuracy():
    """Version 1 (no ``schema_version``) named every model's measurement ``test_accuracy``."""
    classifier = measured_run().submissions[0].to_dict()
    model = classifier["models"]["model_1"]
    del model["metric"]
    read = SubmissionResult.from_dict(classifier).models["model_1"]
    assert (read.metric, read.test_value, read.train_value) == ("accuracy", 0.9761, 0.9812)
