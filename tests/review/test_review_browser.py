"""Grading one question of a class of 20 in a real browser (Debian's Chromium, driven by
Playwright): an item applied to a group, removed from one answer, an item's points edited, a
comment, a reload, keyboard shortcuts; then the gradebook and a student's page. Without the
token, the browser gets nothing."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from grader.reports.gradebooks import Assignment, gradebook_csv
from grader.reports.pages import submission_page
from grader.review.app import create_app
from grader.review.batch import ReviewBatch
from grader.review.marks import Marks
from tests.conftest import ARTIFACTS
from tests.review.conftest import SPEC, write_batch

pytestmark = pytest.mark.browser
TOKEN = "browser-test-token"


@pytest.fixture
def app_address(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = write_batch(tmp_path / "out", 20)
    server = make_server("127.0.0.1", 0, create_app(folder, TOKEN), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", folder
    server.shutdown()


def test_grading_a_question_by_group_in_the_browser(browser: Any, app_address: tuple[str, Path]) -> None:
    address, folder = app_address
    page = browser.new_page()
    page.goto(f"{address}/?token={TOKEN}")
    assert "?token" not in page.url  # the token leaves the address bar
    submit(page, page.locator("text=q1: model_1 against model_2"))
    assert "0 of 20 graded" in page.inner_text("h1")
    group = page.locator('section.group[data-group^="prefers model_2"]').first
    members = group.locator("article.answer").count()
    submit(page, group.locator("button.group-apply[data-item='compares-their-accuracy']"))
    assert f"{members} of 20 graded" in page.inner_text("h1")
    first = page.locator('section.group[data-group^="prefers model_2"] article.answer').first
    removed_from = first.get_attribute("data-submission")
    submit(page, first.locator("button.item[data-key='1']"))  # removes the item from this answer alone
    assert f"{members - 1} of 20 graded" in page.inner_text("h1")
    page.fill("#rubric li:first-child input[name=points]", "1.5")
    submit(page, page.locator("#rubric li:first-child button"))
    answer = page.locator(f'article[data-submission="{removed_from}"]')
    answer.locator("textarea").fill("Which figures?")
    submit(page, answer.locator(".comment button"))
    page.reload()
    assert page.locator(f'article[data-submission="{removed_from}"] textarea').input_value() == "Which figures?"
    # Keyboard: the current answer is the one last acted on; j moves on, 3 toggles its third item.
    page.keyboard.press("j")
    current = page.locator("article.answer.current")
    submission = current.get_attribute("data-submission")
    with page.expect_navigation():
        page.keyboard.press("3")
    assert (
        page.locator(f'article[data-submission="{submission}"] button.item[data-key="3"]').get_attribute("aria-pressed")
        == "true"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-question.png"), full_page=False)

    batch = ReviewBatch.load(folder)
    grades = Marks(folder, batch.questions).grades(batch.answers())
    graded_with_item = [s for s, g in grades.items() if g[0].points is not None and g[0].items[0].points == 1.5]
    assert len(graded_with_item) >= members - 1 and grades[removed_from][0].comment == "Which figures?"
    run = _run_with(batch, grades)
    gradebook = list(csv.reader(io.StringIO(gradebook_csv(run, Assignment("MNIST")))))
    assert gradebook[1][-1] == "24" and all(row[-1] == "" for row in gradebook[2:])  # q2 and q3 ungraded
    partial = list(csv.reader(io.StringIO(gradebook_csv(_run_with(batch, grades, True), Assignment("MNIST")))))
    assert partial[2][-1] == f"{batch.submissions['student00'].score:g}"
    student = submission_page(batch.submissions[removed_from], run, SPEC, None)
    assert "Which figures?" in student and "not graded yet" in student


def submit(page: Any, control: Any) -> None:
    """Click ``control`` and wait for the page it loads (a form's POST and its redirect back)."""
    with page.expect_navigation():
        control.click()


def _run_with(batch: ReviewBatch, grades: dict, partial: bool = False):
    from grader.judge.results import GradeRun

    results = tuple(batch.submissions.values())
    return GradeRun("test", "full", SPEC.name, results, 15.0, (), batch.questions, grades, partial)


def test_without_the_token_the_browser_gets_nothing(browser: Any, app_address: tuple[str, Path]) -> None:
    address, _ = app_address
    page = browser.new_page()
    for path in ("/", "/questions/q1", "/static/review.js"):
        response = page.goto(f"{address}{path}")
        assert response.status == 403
        assert "student00" not in page.content()
    response = page.goto(f"{address}/?token=not-the-token")
    assert response.status == 403
