"""The review app through Flask's test client: refused without its token, every change a POST
with a CSRF token, strict headers, a student's markdown unable to run anything, and grading by
group with an editable rubric."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import threading
import time
import webbrowser
from pathlib import Path

import pytest
import werkzeug.serving

import grader.review.app
from grader.review.app import create_app, render_markdown, serve
from grader.review.batch import ReviewBatch
from grader.review.marks import Marks

TOKEN = "secret-token"
PAGES = ["/", "/questions/q1", "/questions/q3", "/static/review.js", "/static/review.css"]
ACTIONS = [
    ("/questions/q1/apply", {"item": "compares-their-accuracy", "submission": "student00", "on": "1"}),
    ("/questions/q1/items/compares-their-accuracy", {"points": "2"}),
    ("/questions/q1/comment", {"submission": "student00", "comment": "hi"}),
    ("/questions/q1/move", {"submission": "student00", "group": "mine"}),
]


@pytest.fixture
def client(batch_folder):
    return create_app(batch_folder, TOKEN).test_client()


def signed_in(client) -> str:
    """Open the app with its token, as the printed address does; the page's CSRF token."""
    assert client.get(f"/?token={TOKEN}").status_code == 302
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/questions/q1").text).group(1)


def digests(batch_folder, submissions):
    """The digests of the answers to q1 the page shows, posted with each grading."""
    batch = ReviewBatch.load(batch_folder)
    return [batch.answer(submission, "q1").digest for submission in submissions]


def grades(batch_folder):
    batch = ReviewBatch.load(batch_folder)
    return Marks(batch_folder, batch.questions).grades(batch.answers())


@pytest.mark.parametrize("path", PAGES)
def test_without_the_token_every_page_is_refused(client, path):
    assert client.get(path).status_code == 403
    assert client.get(f"{path}?token=wrong").status_code == 403


@pytest.mark.parametrize(("path", "form"), ACTIONS)
def test_without_the_token_or_the_csrf_token_every_action_is_refused(client, batch_folder, path, form):
    assert client.post(path, data=form).status_code == 403
    signed_in(client)
    assert client.post(path, data={**form, "csrf": "forged"}).status_code == 403
    assert client.post(path, data=form).status_code == 403
    assert all(g.status == "ungraded" for gs in grades(batch_folder).values() for g in gs)


def test_pages_carry_a_strict_content_security_policy(client):
    signed_in(client)
    response = client.get("/questions/q2")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "http" not in re.sub(
        r"http://127\.0\.0\.1[^\"']*", "", " ".join(re.findall(r'(?:src|href)="([^"]+)"', response.text))
    )


def test_student_markdown_is_rendered_and_cannot_run_anything():
    html = str(
        render_markdown("**bold** <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>")
    )
    assert "<strong>bold</strong>" in html
    assert "<script" not in html and "<img" not in html and "href" not in html
    assert "&lt;script&gt;" in html  # shown as the text the student wrote


def test_names_and_texts_from_students_are_escaped_everywhere(batch_folder):
    results = batch_folder / "results.json"
    data = json.loads(results.read_text())
    hostile = '<img src=x onerror="alert(1)">'
    data["submissions"][0]["id"] = f"eve{hostile}"
    data["submissions"][0]["warnings"] = [f"markdown cell 18 says {hostile}"]
    results.write_text(json.dumps(data))
    client = create_app(batch_folder, TOKEN).test_client()
    signed_in(client)
    page = client.get("/questions/q1").text
    assert "eve&lt;img" in page and "<img src=x" not in page
    assert "markdown cell 18 says &lt;img" in page


def test_grading_a_group_then_one_answer_then_the_rubric(client, batch_folder):
    csrf = signed_in(client)
    page = client.get("/questions/q1").text
    assert "0 of 20 graded" in page and "prefers model_2" in page and "No answer" in page
    group = ["student00", "student05", "student10", "student15"]  # the first Q1 answer, all in one group
    item = "compares-their-accuracy"
    form = {"csrf": csrf, "item": item, "submission": group, "digest": digests(batch_folder, group), "on": "1"}
    assert client.post("/questions/q1/apply", data=form).status_code == 303
    one = {
        "csrf": csrf,
        "item": item,
        "submission": "student05",
        "digest": digests(batch_folder, ["student05"]),
        "on": "0",
    }
    client.post("/questions/q1/apply", data=one)
    client.post("/questions/q1/items/compares-their-accuracy", data={"csrf": csrf, "points": "1.5"})
    shown = digests(batch_folder, ["student10"])[0]
    comment = {"csrf": csrf, "submission": "student10", "digest": shown, "comment": "Which figures?"}
    assert client.post("/questions/q1/comment", data=comment).status_code == 303
    move = {"csrf": csrf, "submission": "student10", "digest": shown, "group": "to discuss"}
    assert client.post("/questions/q1/move", data=move).status_code == 303
    got = grades(batch_folder)
    assert [got[s][0].points for s in group] == [1.5, None, 1.5, 1.5]
    assert got["student10"][0].comment == "Which figures?"
    page = client.get("/questions/q1").text
    assert "3 of 20 graded" in page and 'data-group="to discuss"' in page
    assert "Stance: prefers model_1" in page  # shown on each answer, whatever group it is in
    assert "3 of 20 graded" in client.get("/").text


def test_a_regrade_while_reviewing_is_read_again(client, batch_folder):
    signed_in(client)
    assert "student00" in client.get("/questions/q1").text
    results = batch_folder / "results.json"
    data = json.loads(results.read_text())
    data["submissions"] = data["submissions"][1:]
    results.write_text(json.dumps(data))
    os.utime(results, (1, 1))  # a different modification time, whatever the clock's resolution
    assert 'data-submission="student00"' not in client.get("/questions/q1").text


def test_bad_input_is_refused_with_a_reason(client):
    csrf = signed_in(client)
    response = client.post("/questions/q1/items/compares-their-accuracy", data={"csrf": csrf, "points": "lots"})
    assert response.status_code == 400 and "points must be a number" in response.text
    response = client.post(
        "/questions/q1/apply", data={"csrf": csrf, "item": "compares-their-accuracy", "submission": "nobody", "on": "1"}
    )
    assert response.status_code == 400 and "nobody" in response.text


def test_an_answer_changed_since_the_page_was_drawn_is_not_graded_unseen(client, batch_folder):
    csrf = signed_in(client)
    form = {"csrf": csrf, "item": "compares-their-accuracy", "submission": "student00", "on": "1"}
    response = client.post("/questions/q1/apply", data={**form, "digest": "0123456789abcdef"})
    assert response.status_code == 409 and "reload the page" in response.text
    assert all(g.status == "ungraded" for gs in grades(batch_folder).values() for g in gs)


def test_curves_are_served_as_images_and_odd_requests_get_a_clear_refusal(client, batch_folder):
    csrf = signed_in(client)
    page = client.get("/questions/q2").text
    assert 'src="/curves?submission=student00&amp;model=model_1"' in page
    image = client.get("/curves?submission=student00&model=model_1")
    assert image.status_code == 200 and image.mimetype == "image/svg+xml" and b"<svg" in image.data
    assert client.get("/curves?submission=student00&model=model_3").status_code == 404  # no history
    assert client.get("/questions/q9").status_code == 404
    response = client.post("/questions/q1/items/compares-their-accuracy", data={"csrf": csrf, "points": "nan"})
    assert response.status_code == 400
    response = client.post("/questions/q1/items/invented", data={"csrf": csrf, "points": "1"})
    assert response.status_code == 404 and "no rubric item &#39;invented&#39;" in response.text


def test_an_answer_moved_then_gone_from_the_batch_does_not_break_the_page(client, batch_folder):
    signed_in(client)
    Marks(batch_folder, ReviewBatch.load(batch_folder).questions).move("left-the-course", "q1", "mine")
    assert client.get("/questions/q1").status_code == 200


def test_a_token_of_other_characters_is_refused_not_an_error(client):
    assert client.get("/?token=%C3%A9t%C3%A9").status_code == 403


@pytest.mark.parametrize("action", ["comment", "move"])
def test_a_comment_or_a_move_on_an_answer_changed_since_the_page_was_drawn_is_refused(client, batch_folder, action):
    csrf = signed_in(client)
    form = {"csrf": csrf, "submission": "student00", "comment": "Good.", "group": "mine"}
    for digest in ({"digest": "0123456789abcdef"}, {}):  # a text regraded since, or a form without its digest
        response = client.post(f"/questions/q1/{action}", data={**form, **digest})
        assert response.status_code == 409 and "reload the page" in response.text
    batch = ReviewBatch.load(batch_folder)
    marks = Marks(batch_folder, batch.questions)
    assert marks.grades(batch.answers())["student00"][0].comment == "" and marks.moved("q1") == {}


@pytest.mark.parametrize("action", ["comment", "move", "apply"])
def test_an_action_on_a_question_not_in_the_batch_is_refused_naming_the_known_ones(client, batch_folder, action):
    csrf = signed_in(client)
    form = {"csrf": csrf, "submission": "student00", "digest": digests(batch_folder, ["student00"])}
    form |= {"comment": "Good.", "group": "mine", "item": "compares-their-accuracy", "on": "1"}
    response = client.post(f"/questions/q9/{action}", data=form)
    assert response.status_code == 404 and "no question &#39;q9&#39;" in response.text and "q1" in response.text
    assert Marks(batch_folder, ReviewBatch.load(batch_folder).questions).moved("q9") == {}


@pytest.mark.parametrize("host", ["127.0.0.1:8123", "localhost", "LOCALHOST:80", "[::1]:8123", "127.0.0.1"])
def test_the_app_answers_to_the_local_host_names(client, host):
    assert client.get(f"/?token={TOKEN}", headers={"Host": host}).status_code == 302


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8123", "127.0.0.1.evil.example", "localhost.evil.example:80", "[::2]:80"]
)
def test_a_request_for_another_host_name_is_refused_whatever_it_resolves_to(client, host):
    """DNS rebinding: a page of evil.example, its name resolving to 127.0.0.1, asks the app."""
    response = client.get(f"/?token={TOKEN}", headers={"Host": host})
    assert response.status_code == 403 and "answers to 127.0.0.1, localhost and [::1] only" in response.text
    assert client.get("/questions/q1").status_code == 403  # the token was not taken either


def test_a_markdown_image_shows_as_its_description_and_links_keep_to_the_web():
    html = str(render_markdown("![a plot of *loss*](http://e.example/x.png) ![](y.png) [docs](https://keras.io)"))
    assert "[image: a plot of loss]" in html and "[image]" in html
    assert "img" not in html and "e.example" not in html
    assert '<a href="https://keras.io" rel="noopener noreferrer">docs</a>' in html
    for link in ("[x](ftp://e.example/f)", "[x](data:text/html,hi)", "[x](vbscript:msgbox)"):
        assert "href" not in str(render_markdown(link)), link


def test_learning_curves_are_drawn_by_one_request_at_a_time(batch_folder, monkeypatch):
    """pyplot is global state: two requests drawing at once would draw into each other's figures."""
    counting = threading.Lock()
    drawing_now = [0]
    most_at_once = [0]

    def draw_slowly(history: object, bands: object) -> str:
        with counting:
            drawing_now[0] += 1
            most_at_once[0] = max(most_at_once[0], drawing_now[0])
        time.sleep(0.2)  # long enough for the other requests to arrive meanwhile
        with counting:
            drawing_now[0] -= 1
        return "data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode()

    monkeypatch.setattr(grader.review.app, "learning_curves", draw_slowly)
    app = create_app(batch_folder, TOKEN)
    statuses: list[int] = []

    def fetch_curves(submission: str) -> None:
        client = app.test_client()  # a browser's image request, in a thread of its own
        signed_in(client)
        statuses.append(client.get(f"/curves?submission={submission}&model=model_1").status_code)

    threads = [threading.Thread(target=fetch_curves, args=(s,)) for s in ("student00", "student01", "student02")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [200, 200, 200] and most_at_once == [1]


def test_the_browser_is_opened_on_a_private_page_not_on_the_tokened_address(batch_folder, monkeypatch):
    opened: list[str] = []
    seen: dict[str, object] = {}

    class Server:
        server_port = 8123

        def serve_forever(self) -> None:
            page = Path(opened[0].removeprefix("file://"))
            seen.update(mode=stat.S_IMODE(page.stat().st_mode), folder=stat.S_IMODE(page.parent.stat().st_mode))
            seen["text"] = page.read_text()
            raise KeyboardInterrupt  # Ctrl-C

        def server_close(self) -> None:
            pass

    monkeypatch.setattr(werkzeug.serving, "make_server", lambda *args, **kwargs: Server())
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    announced: list[str] = []
    serve(batch_folder, 0, True, announced.append)
    token = announced[0].partition("?token=")[2]
    assert len(token) == 48 and announced[0].startswith("http://127.0.0.1:8123/")
    assert opened[0].startswith("file://") and token not in opened[0]
    assert (seen["mode"], seen["folder"]) == (0o600, 0o700)
    assert f'url=http://127.0.0.1:8123/?token={token}"' in str(seen["text"])
    assert not Path(opened[0].removeprefix("file://")).parent.exists()  # gone when the review stops


@pytest.mark.timeout(30)
def test_an_answer_of_megabytes_is_shown_cut_not_parsed_whole():
    shown = render_markdown("![x](" * 400_000)  # 2 MB: about 20 s for the parser whole
    assert "cut at 20,000 of 2,000,000 characters" in shown


def test_the_measurements_beside_an_answer_are_named_and_shown_in_the_exercise_s_metric(client, batch_folder):
    signed_in(client)
    page = client.get("/questions/q1").text
    assert "<th>test accuracy</th><th>training accuracy</th>" in page and "<td>97.60%</td>" in page
    path = batch_folder / "results.json"
    document = json.loads(path.read_text())
    for submission in document["submissions"]:  # a regression's: its mean absolute error, not a share
        for model in submission["models"].values():
            del model["test_accuracy"], model["train_accuracy"]
            model.update(metric="mean_absolute_error", test_mean_absolute_error=46.25, train_mean_absolute_error=None)
    path.write_text(json.dumps(document))
    page = client.get("/questions/q1").text
    assert "<th>test mean absolute error</th><th>training mean absolute error</th>" in page
    assert "<td>46.2500</td>" in page and "%" not in page.split('class="measured"')[1].split("</table>")[0]
