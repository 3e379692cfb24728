"""Rendering of results into files, from fixture results: no TensorFlow, no kernel.

The HTML pages are compared with golden files in ``tests/golden``; after an
intended change, rewrite them with ``pytest tests/reports/test_outputs.py --update-golden``
and review the diff. Plots are compared apart from the pages (their SVG depends
on the matplotlib version), so the golden pages hold a placeholder for each.
"""

import base64
import csv
import dataclasses
import hashlib
import html
import io
import json
import re
from datetime import datetime

import nbformat
import pytest

import grader.reports.outputs
import grader.reports.pages
from grader.ingest.roster import Student
from grader.judge.checks import CheckResult
from grader.judge.results import RESULTS_SCHEMA_VERSION, Drawings, Graded, GradeRun, SubmissionResult, score
from grader.reports.gradebooks import (
    Assignment,
    checks_csv,
    feedback,
    gradebook_csv,
    moodle_worksheet,
    spreadsheet_cell,
)
from grader.reports.outputs import DrawnCurves, refresh_standings, write_page, write_summaries
from grader.reports.pages import (
    SORT_SCRIPT,
    draw_parts,
    index_page,
    notebook_html,
    notebook_page,
    page_name,
    submission_page,
)
from grader.spec.exercise import load_spec
from tests.conftest import FIXTURES, ROOT

GOLDEN = FIXTURES.parent / "golden"
RUNS = ("full_run", "quick_run")
DATA_URI = re.compile(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=]+")
# The digest a page was drawn from changes with the grader's version: compared apart, like plots.
DRAWN_FROM = re.compile(r'(<meta name="grader-drawn-from" content=")[0-9a-f]+(">)')


def load_run(name: str) -> GradeRun:
    document = json.loads((FIXTURES / "results" / f"{name}.json").read_text())
    return GradeRun(
        document["grader_version"],
        document["mode"],
        document["spec"],
        tuple(SubmissionResult.from_dict(entry) for entry in document["submissions"]),
    )


def without_plots(page: str) -> str:
    return DRAWN_FROM.sub(r"\1DIGEST\2", DATA_URI.sub("data:image/svg+xml;base64,PLOT", page))


def assert_matches_golden(page: str, name: str, update: bool) -> None:
    golden = GOLDEN / name
    if update:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(without_plots(page))
    assert golden.is_file(), f"{golden} is missing: run pytest {__file__} --update-golden"
    assert without_plots(page) == golden.read_text(), f"{name} differs from its golden file (see the module docstring)"


def result(sid="alice", status="graded", message="All 5 layers are as expected.", warnings=()):
    checks = (
        CheckResult("model_1.architecture", "pass", ["Dense(64, relu)"], ["Dense(64, relu)"], message, 2, 2),
        CheckResult("model_1.params", "fail", 55050, 1000, "1,000 parameters", 0, 1),
        CheckResult("model_1.accuracy", "skipped", None, None, "quick", 0, 3),
    )
    earned, available = score(list(checks))
    return SubmissionResult(sid, f"{sid}.ipynb", status, earned, available, checks, tuple(warnings))


def run(*results):
    return GradeRun("0.2.0", "quick", "MNIST", tuple(results))


@pytest.mark.parametrize("run_name", RUNS)
def test_class_page_matches_its_golden_file(run_name, spec, update_golden):
    assert_matches_golden(index_page(load_run(run_name), spec), f"{run_name}/index.html", update_golden)


# One page of each kind: full marks, no model found, wrong layers, a crashed cell, a changed model.
GOLDEN_PAGES = [
    ("full_run", "mnist_mlp_solution"),
    ("full_run", "fakes_its_accuracy"),
    ("quick_run", "wrong_architecture"),
    ("quick_run", "crashes"),
    ("quick_run", "changes_model_after_training"),
]


@pytest.mark.parametrize(("run_name", "submission_id"), GOLDEN_PAGES)
def test_submission_pages_match_their_golden_files(run_name, submission_id, spec, update_golden):
    graded = load_run(run_name)
    entry = next(entry for entry in graded.submissions if entry.id == submission_id)
    page = submission_page(entry, graded, spec, f"../notebooks/{page_name(entry.id)}")
    assert_matches_golden(page, f"{run_name}/{page_name(entry.id)}", update_golden)


def test_pages_embed_every_plot_and_need_no_other_file(spec):
    graded = load_run("full_run")
    index = index_page(graded, spec)
    # Score histogram, pass rates, accuracy and epoch time distributions.
    assert len(DATA_URI.findall(index)) == 4
    page = submission_page(graded.submissions[0], graded, spec, None)
    assert len(DATA_URI.findall(page)) == len(spec.models)  # a learning-curve figure per model
    for svg in DATA_URI.findall(page + index):
        assert base64.b64decode(svg.split(",", 1)[1]).startswith(b"<?xml")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page + index)  # nothing from the network


def test_the_class_page_allows_only_its_own_sorting_script(spec):
    index = html.unescape(index_page(load_run("quick_run"), spec))
    digest = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in index
    assert f"<script>{SORT_SCRIPT}</script>" in index
    assert index.count("<script") == 1


def test_the_layer_table_marks_the_layers_that_differ(spec):
    graded = load_run("quick_run")
    wrong = next(entry for entry in graded.submissions if entry.id == "wrong_architecture")
    page = submission_page(wrong, graded, spec, None)
    assert 'class="mono differs"' in page
    right = next(entry for entry in graded.submissions if entry.id == "correct_other_spellings")
    assert "mono differs" not in submission_page(right, graded, spec, None)


def test_student_text_is_escaped_in_pages(spec):
    page = submission_page(
        result(message="<script>alert(1)</script>", warnings=["<img src=x onerror=alert(1)>"]),
        run(result()),
        spec,
        None,
    )
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page
    assert "script-src 'none'" in html.unescape(page)


def test_scripts_in_a_notebook_stay_inert_on_its_page():
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Title\n<script>window.pwned = 1</script>\n<img src=x onerror='pwned=2'>"),
            nbformat.v4.new_code_cell(
                "show()",
                outputs=[
                    nbformat.v4.new_output(
                        "display_data",
                        data={
                            "text/html": "<b>bold</b><script>window.pwned = 3</script>",
                            "application/javascript": "window.pwned = 4",
                            "text/plain": "<HTML>",
                        },
                    )
                ],
            ),
        ]
    )
    page = notebook_page(result(), notebook_html(nbformat.writes(notebook)), "quick")
    assert "<script" not in page and "onerror" not in page and "window.pwned = 4" not in page
    assert "&lt;script&gt;window.pwned = 1" in page  # shown as text
    assert '<h1 id="Title">' in page and "<b>bold</b>" in page  # safe markup keeps its look
    assert "script-src 'none'" in html.unescape(page)
    assert "in quick mode: every fit ran one epoch on a slice" in page


def test_event_handlers_and_javascript_links_are_dropped_wherever_they_come_from():
    """Past nbconvert's own sanitiser: a markdown link, and an image's width in its metadata
    (written into the page unquoted); the page's CSP would stop them too, but they are gone."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("[click](javascript:window.pwned=1) and [docs](https://keras.io)"),
            nbformat.v4.new_code_cell(
                "plot()",
                outputs=[
                    nbformat.v4.new_output(
                        "display_data",
                        data={"image/png": png},
                        metadata={"image/png": {"width": "1 onerror=window.pwned=2"}},
                    )
                ],
            ),
        ]
    )
    page = notebook_page(result(), notebook_html(nbformat.writes(notebook)), "quick")
    assert "onerror" not in page and "javascript:" not in page
    assert '<a href="https://keras.io">docs</a>' in page and "<a>click</a>" in page
    assert f'src="data:image/png;base64,{png}"' in page


def test_gradebook_has_the_columns_canvas_imports_and_one_score_per_student():
    jane = Student("doejane", "canvas", user_id="1234", late=True, file="mnist.ipynb")
    graded = run(result("jdoe"), dataclasses.replace(result("doejane_1234", status="timeout"), student=jane))
    rows = list(csv.reader(io.StringIO(gradebook_csv(graded, Assignment("MNIST homework", "5678")))))
    assert rows == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "MNIST homework (5678)"],
        ["    Points Possible", "", "", "", "", "3"],
        ["jdoe", "", "", "jdoe", "", "2"],
        ["doejane", "1234", "", "doejane_1234", "", "2"],
    ]
    assert gradebook_csv(graded, Assignment("MNIST")).splitlines()[0].endswith(",Section,MNIST")


def test_no_cell_of_any_csv_starts_a_formula_and_points_possible_is_the_specs_maximum():
    """Names come from students (a Moodle folder, a Canvas file): a spreadsheet must not run them."""
    hostile = ('=HYPERLINK("http://x","y")', "+1+2", "-SUM(A1)", "@cmd", "\tx", "\rx")
    students = [
        Student(name, "moodle", participant_id=str(index), file="m.ipynb") for index, name in enumerate(hostile)
    ]
    results = [
        dataclasses.replace(result(name), student=student) for name, student in zip(hostile, students, strict=True)
    ]
    graded = dataclasses.replace(run(*results), max_score=24.0)
    tables = [
        gradebook_csv(graded, Assignment("=evil")),
        checks_csv(graded),
        moodle_worksheet(graded, datetime(2026, 1, 1)),
    ]
    cells = [cell for table in tables for row in csv.reader(io.StringIO(table, newline="")) for cell in row]
    assert cells and not [cell for cell in cells if cell.startswith(("=", "+", "@", "\t", "\r"))]
    assert not [cell for cell in cells if cell.startswith("-") and cell != "-3"]
    assert '\'=HYPERLINK("http://x","y")' in cells and "'-SUM(A1)" in cells
    assert spreadsheet_cell("-3") == "-3" and spreadsheet_cell("+0.5") == "+0.5"
    # Points Possible is the spec's maximum, even when no notebook could be graded
    failed = SubmissionResult("bob", "bob.ipynb", "not_graded", None, None, (), error="kernel")
    nothing = dataclasses.replace(run(failed), max_score=24.0)
    assert list(csv.reader(io.StringIO(gradebook_csv(nothing, Assignment("MNIST")))))[1][-1] == "24"


def test_the_class_page_names_the_grades_to_enter_by_hand(spec):
    notice = "'bob\\n_1_2_x.ipynb': its name is not in Canvas' pattern (…); enter its grade by hand"
    index = index_page(dataclasses.replace(run(result("alice")), notices=(notice,)), spec)
    assert "To do by hand:</strong>" in index and "bob\\n_1_2_x.ipynb" in index
    assert "To do by hand" not in index_page(run(result("alice")), spec)


def test_moodle_worksheet_names_participants_and_gives_feedback_from_the_failed_checks():
    jane = Student("Jane Doe", "moodle", participant_id="1234567", file="mnist.ipynb")
    from_moodle = dataclasses.replace(result("Jane Doe_1234567"), student=jane)
    graded_at = datetime(2026, 11, 30, 14, 5)
    rows = list(csv.reader(io.StringIO(moodle_worksheet(run(from_moodle, result("jdoe")), graded_at))))
    assert rows[0][:5] == ["Identifier", "Full name", "Email address", "Status", "Grade"]
    assert {"Maximum Grade", "Last modified (grade)", "Feedback comments"} <= set(rows[0])
    assert len(rows) == 2  # the student from a plain folder is not Moodle's
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["Identifier"], row["Full name"], row["Grade"], row["Maximum Grade"]) == (
        "Participant 1234567", "Jane Doe", "2", "3"
    )  # fmt: skip
    assert row["Last modified (grade)"] == "Monday, 30 November 2026, 02:05 PM"
    assert row["Feedback comments"] == "2/3. model_1.params: 1,000 parameters"
    assert moodle_worksheet(run(result("jdoe")), graded_at) is None
    # A notebook the grader failed on: its grade blank, never 0, and the feedback says why
    failed = SubmissionResult(
        "Jane Doe_1234567", "m.ipynb", "not_graded", None, None, (), error="could not be graded: kernel", student=jane
    )
    rows = list(csv.reader(io.StringIO(moodle_worksheet(run(failed), graded_at))))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["Grade"], row["Maximum Grade"], row["Feedback comments"]) == ("", "", "could not be graded: kernel")


def test_feedback_is_short_and_says_when_the_grader_failed():
    assert feedback(result("alice", message="x")).startswith("2/3. model_1.params")
    long = result("alice", message="x")
    long = dataclasses.replace(
        long, checks=tuple(dataclasses.replace(c, status="fail", message="y" * 500) for c in long.checks)
    )
    assert len(feedback(long)) == 800 and feedback(long).endswith("…")
    failed = SubmissionResult("bob", "bob.ipynb", "not_graded", None, None, (), error="could not be graded: kernel")
    assert feedback(failed) == "could not be graded: kernel"


def test_a_notebook_the_grader_failed_is_blank_in_every_export_and_named_on_the_pages(spec):
    failed = SubmissionResult(
        "bob", "bob.ipynb", "not_graded", None, None, (), error="could not be graded: kernel", logs="logs/bob"
    )
    graded = run(result("alice"), failed)
    assert list(csv.reader(io.StringIO(gradebook_csv(graded, Assignment("MNIST")))))[3] == [
        "bob",
        "",
        "",
        "bob",
        "",
        "",
    ]
    assert list(csv.reader(io.StringIO(checks_csv(graded))))[2][:4] == ["bob", "", "", "not_graded"]
    index = index_page(graded, spec)
    assert "1 notebook could not be graded</strong>" in index and ">not graded</td>" in index
    page = submission_page(failed, graded, spec, None)
    assert "Not graded, and not the student's fault:" in page and 'href="../logs/bob/"' in page
    assert failed.to_dict()["fault"] == "grader" and SubmissionResult.from_dict(failed.to_dict()) == failed


def test_checks_csv_has_one_row_per_submission_and_a_column_per_check():
    rows = list(csv.reader(io.StringIO(checks_csv(run(result("alice"), result("bob", status="timeout"))))))
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


def test_results_json_follows_the_schema_and_round_trips(tmp_path, spec):
    graded = load_run("full_run")
    first = next(entry for entry in graded.submissions if entry.id == "mnist_mlp_solution")
    write_page(first, nbformat.writes(nbformat.v4.new_notebook()), graded, spec, tmp_path)
    write_summaries(graded, spec, tmp_path)
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["schema_version"] == RESULTS_SCHEMA_VERSION
    assert set(document) == {
        "schema_version", "grader_version", "mode", "spec", "max_score", "notices", "submissions", "questions",
        "partial", "max_total",
    }  # fmt: skip
    entry = next(entry for entry in document["submissions"] if entry["id"] == first.id)
    assert {"id", "path", "status", "score", "max_score", "checks", "warnings", "models", "error"} <= set(entry)
    assert {"architecture", "history", "epoch_times", "metric", "test_accuracy"} <= set(entry["models"]["model_1"])
    assert set(entry["checks"][0]) >= {"id", "status", "expected", "actual", "message"}
    assert SubmissionResult.from_dict(entry) == first
    written = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")}
    assert {"index.html", "gradebook.csv", "checks.csv", "results.json"} <= written
    assert {f"submissions/{page_name(first.id)}", f"notebooks/{page_name(first.id)}"} <= written
    assert not [name for name in written if name.endswith(".part")]


def test_a_reused_result_keeps_its_notebook_page_and_a_missing_one_is_drawn(tmp_path, spec):
    graded = load_run("full_run")
    first = next(entry for entry in graded.submissions if entry.id == "mnist_mlp_solution")
    notebook_page = tmp_path / "notebooks" / page_name(first.id)
    write_page(first, nbformat.writes(nbformat.v4.new_notebook()), graded, spec, tmp_path)
    drawn = notebook_page.read_text()
    changed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("drawn again")])
    write_page(first, nbformat.writes(changed), graded, spec, tmp_path, reused=True)
    assert notebook_page.read_text() == drawn  # not drawn again
    assert (tmp_path / "submissions" / page_name(first.id)).is_file()
    notebook_page.unlink()
    write_page(first, nbformat.writes(changed), graded, spec, tmp_path, reused=True)
    assert "drawn again" in notebook_page.read_text()


def test_a_submission_page_is_drawn_again_only_when_what_it_shows_changed(tmp_path, spec):
    graded = load_run("full_run")
    first = next(entry for entry in graded.submissions if entry.id == "mnist_mlp_solution")
    page = tmp_path / "submissions" / page_name(first.id)
    write_page(first, None, graded, spec, tmp_path)
    page.write_text(page.read_text().replace("</h1>", "</h1><!-- kept -->"))
    write_page(first, None, graded, spec, tmp_path, reused=True)
    assert "<!-- kept -->" in page.read_text()  # the same result in the same class: not drawn again
    regraded = dataclasses.replace(first, warnings=(*first.warnings, "a warning of the new run"))
    write_page(regraded, None, graded, spec, tmp_path)
    assert "<!-- kept -->" not in page.read_text() and "a warning of the new run" in page.read_text()


def test_pages_put_together_from_a_workers_drawings_are_the_pages_drawn_whole(tmp_path, spec, monkeypatch):
    unneeded = DrawnCurves(spec)
    unneeded.keep("alice", Drawings(None, {"model_1": "plot"}))
    assert unneeded.get("alice") is None  # no improvement, no standing: no page is drawn again
    spec = load_spec(ROOT / "reference" / "mnist_mlp_open.toml")  # whose pages show the improvement's standing
    graded = load_run("full_run")
    first = next(entry for entry in graded.submissions if entry.id == "mnist_mlp_solution")
    notebook = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hi')")]))
    write_page(first, notebook, graded, spec, tmp_path / "whole")
    drawings = draw_parts(Graded(first, notebook), spec).drawings
    assert drawings is not None and drawings.notebook_html is not None
    assert set(drawings.curves) == {model.name for model in spec.models}
    assert all(curve.startswith("data:image/svg+xml;base64,") for curve in drawings.curves.values())
    kept = DrawnCurves(spec)
    kept.keep(first.id, drawings)
    assert kept.get(first.id) == drawings.curves and kept.get("someone else") is None

    # Put together where nothing can be drawn: the parts are used, never drawn again.
    def cannot_draw(*args):
        raise AssertionError("drawn again")

    monkeypatch.setattr(grader.reports.outputs, "notebook_html", cannot_draw)
    monkeypatch.setattr(grader.reports.pages.plots, "learning_curves", cannot_draw)
    write_page(first, notebook, graded, spec, tmp_path / "parts", drawings=drawings)
    (tmp_path / "parts" / "submissions" / page_name(first.id)).unlink()  # drawn again, at the end of a batch
    refresh_standings(graded, spec, tmp_path / "parts", {first.id: "a standing since moved"}, kept)
    for folder in ("submissions", "notebooks"):
        name = page_name(first.id)
        assert (tmp_path / "parts" / folder / name).read_text() == (tmp_path / "whole" / folder / name).read_text()


def test_what_a_worker_cannot_draw_is_drawn_or_explained_where_the_pages_are_written(tmp_path, spec):
    first = result()
    drawings = draw_parts(Graded(first, "{not a notebook"), spec).drawings
    assert drawings is not None and drawings.notebook_html is None
    problem = write_page(first, "{not a notebook", run(first), spec, tmp_path, drawings=drawings)
    assert problem is not None and "could not be rendered" in problem
    assert "could not be rendered" in (tmp_path / "notebooks" / page_name(first.id)).read_text()


def test_odd_ids_get_safe_page_names_that_never_collide():
    assert page_name("jdoe") == "jdoe.html"
    assert re.fullmatch(r"_\.\._etc_passwd-[0-9a-f]{8}\.html", page_name("../../etc/passwd"))
    assert re.fullmatch(r"Jos__M_ller-[0-9a-f]{8}\.html", page_name("José Müller"))
    assert page_name("x y") != page_name("x_y") == "x_y.html"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", ["[", "[x](", "<", "<a "])
def test_markdown_of_megabytes_is_drawn_cut_as_plain_text_not_parsed(text):
    """nbconvert's parser, link filter and sanitiser take quadratic time on such text: 50,000
    "[" took them 37 s, a megabyte hours."""
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": text * 500_000})]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text * 1_000_000), cell])
    drawn = notebook_html(nbformat.writes(notebook))
    assert f"cut at 4,000 of its {len(text) * 1_000_000:,} characters" in drawn
    assert f"cut at 4,000 of its {len(text) * 500_000:,} characters" in drawn


@pytest.mark.parametrize(
    ("value", "cell"), [("-3", "-3"), ("-inf", "'-inf"), ("'=x", "''=x"), ("'a", "''a"), ("=1", "'=1")]
)
def test_a_cell_is_guarded_so_that_it_reads_back_exactly(value, cell):
    from grader.reports.gradebooks import plain_cell

    assert spreadsheet_cell(value) == cell
    assert plain_cell(cell) == value
