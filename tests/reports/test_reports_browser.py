"""The reports of a real grading run, in a real browser: headless Chromium (Debian's
``chromium`` package) driven by Playwright. Screenshots are saved under
``test-artifacts/`` (or ``$GRADER_TEST_ARTIFACTS``) for a person to look at; ``tox -e docs``
puts some of them on the documentation site and in the README."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.kernel, pytest.mark.browser]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(graded_samples: Path) -> Iterator[str]:
    """The reports folder behind a plain static web server on loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(graded_samples)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Visit:
    """A browser tab that records console errors, page errors and failed requests."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        self.page.on("pageerror", lambda error: self.problems.append(str(error)))
        self.page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))

    def go(self, url: str) -> Any:
        response = self.page.goto(url)
        assert response is None or response.ok, f"{url}: HTTP {response.status}"
        return self.page

    def screenshot(self, name: str, height: int | None = None) -> None:
        """The whole page, or its first ``height`` pixels (the documentation's pictures)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        clip = {"x": 0, "y": 0, "width": 1280, "height": height} if height else None
        self.page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True, clip=clip)

    def assert_plots_visible(self, expected: int) -> None:
        images = self.page.locator("figure img")
        assert images.count() == expected
        for index in range(expected):
            image = images.nth(index)
            image.scroll_into_view_if_needed()
            assert image.is_visible()
            assert image.evaluate("img => img.complete && img.naturalWidth > 100 && img.naturalHeight > 50")

    def assert_links_work(self) -> None:
        hrefs = self.page.eval_on_selector_all("a[href]", "links => links.map(link => link.href)")
        assert hrefs
        for href in set(hrefs):
            response = self.page.request.get(href)
            assert response.ok, f"broken link on {self.page.url}: {href} (HTTP {response.status})"


def test_the_class_page_shows_plots_sorts_and_links_every_file(browser, site):
    visit = Visit(browser)
    page = visit.go(f"{site}/index.html")
    assert page.title().startswith("Handwritten image detection")
    visit.assert_plots_visible(3)  # scores, checks passed, epoch times (quick mode measures no accuracy)
    visit.assert_links_work()
    visit.screenshot("class-page")

    scores = "table.sortable tbody td.score"
    page.get_by_role("columnheader", name="Score").click()
    ascending = [float(value) for value in page.eval_on_selector_all(scores, "cells => cells.map(c => c.dataset.sort)")]
    assert ascending == sorted(ascending) and ascending[0] < ascending[-1]
    page.get_by_role("columnheader", name="Score").click()
    descending = [
        float(value) for value in page.eval_on_selector_all(scores, "cells => cells.map(c => c.dataset.sort)")
    ]
    assert descending == sorted(ascending, reverse=True)
    assert visit.problems == []


def test_a_submission_page_and_its_notebook_are_a_click_away(browser, site):
    visit = Visit(browser)
    page = visit.go(f"{site}/index.html")
    page.get_by_role("link", name="wrong_architecture").click()
    assert page.url.endswith("/submissions/wrong_architecture.html")
    assert page.locator("h1").inner_text() == "wrong_architecture"
    visit.assert_plots_visible(3)  # learning curves of each model
    assert page.locator("td.differs").first.is_visible()  # model_2's wrong layers are marked
    visit.assert_links_work()
    visit.screenshot("submission-page")
    visit.screenshot("submission-page-top", height=1200)

    page.get_by_role("link", name="the notebook as it ran").click()
    assert page.url.endswith("/notebooks/wrong_architecture.html")
    assert page.locator(".input_area").count() > 5
    visit.screenshot("notebook-page")
    page.get_by_role("link", name="Back to the grade").click()
    assert page.url.endswith("/submissions/wrong_architecture.html")
    assert visit.problems == []


def test_scripts_in_a_students_notebook_stay_inert(browser, site):
    visit = Visit(browser)
    for path in ("submissions/script_in_markdown.html", "notebooks/script_in_markdown.html"):
        page = visit.go(f"{site}/{path}")
        assert page.evaluate("typeof window.pwned") == "undefined"
        assert page.title() != "pwned"
    assert "window.pwned = 'markdown'" in page.inner_text("body")  # shown as text
    visit.screenshot("notebook-with-scripts")
    assert visit.problems == []


def test_the_reports_open_from_files_without_a_server(browser, graded_samples):
    visit = Visit(browser)
    visit.go((graded_samples / "index.html").as_uri())
    visit.assert_plots_visible(3)
    visit.page.get_by_role("link", name="correct_other_spellings").click()
    visit.assert_plots_visible(3)
    assert visit.problems == []
