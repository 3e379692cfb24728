import csv
import io
import json

from grader.checks import CheckResult
from grader.outputs import gradebook_csv, page_name, submission_page, write_page, write_summaries
from grader.results import GradeRun, SubmissionResult, score


def result(sid="alice", status="graded", message="All 5 layers are as expected.", warnings=()):
    checks = (
        CheckResult("model_1.architecture", "pass", ["Dense(64, relu)"], ["Dense(64, relu)"], message, 2, 2),
        CheckResult("model_1.params", "fail", 55050, 1000, "1,000 parameters", 0, 1),
        CheckResult("model_1.accuracy", "skipped", None, None, "quick", 0, 3),
    )
    earned, available = score(list(checks))
    return SubmissionResult(
        sid, f"{sid}.ipynb", status, earned, available, checks, tuple(warnings), {"model_1": [1.5, 1.2]}
    )


def run(*results):
    return GradeRun("0.1.0", "quick", "MNIST", tuple(results))


def test_score_leaves_skipped_checks_out_of_both_sides():
    assert (result().score, result().max_score) == (2, 3)


def test_gradebook_has_one_row_per_submission_and_a_column_per_check():
    rows = list(csv.reader(io.StringIO(gradebook_csv(run(result("alice"), result("bob", status="timeout"))))))
    assert rows[0] == [
        "id",
        "score",
        "max_score",
        "status",
        "model_1.architecture",
        "model_1.params",
        "model_1.accuracy",
    ]
    assert rows[1] == ["alice", "2", "3", "graded", "2", "0", ""]
    assert rows[2][3] == "timeout"


def test_results_json_follows_the_schema_and_round_trips(tmp_path):
    write_page(result(), run(result()), tmp_path)
    write_summaries(run(result()), tmp_path)
    document = json.loads((tmp_path / "results.json").read_text())
    assert set(document) == {"grader_version", "mode", "spec", "submissions"}
    entry = document["submissions"][0]
    assert {"id", "path", "status", "score", "max_score", "checks", "warnings", "epoch_times", "error"} <= set(entry)
    assert set(entry["checks"][0]) >= {"id", "status", "expected", "actual", "message"}
    assert SubmissionResult.from_dict(entry) == result()
    assert (tmp_path / "index.html").is_file() and (tmp_path / "submissions" / "alice.html").is_file()
    assert not list(tmp_path.rglob("*.part"))


def test_student_text_is_escaped_in_pages():
    page = submission_page(
        result(message="<script>alert(1)</script>", warnings=["<img src=x onerror=alert(1)>"]), run(result())
    )
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page


def test_odd_ids_get_safe_page_names():
    assert page_name("../../etc/passwd") == "_.._etc_passwd.html"
    assert page_name("José Müller") == "Jos__M_ller.html"
