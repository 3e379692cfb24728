"""``grader review``: a local web app (Flask) for grading the written answers question by
question, with answer groups and a rubric editable while grading.

Like Jupyter, it listens on 127.0.0.1 and is opened with a random token in its address;
without it every page and action is refused, as is every request that names another host than
127.0.0.1, localhost or [::1] (DNS rebinding). The browser is opened on a file only its owner
can read, which leads to the address: the token is in no process's arguments. Every change
is a POST carrying a CSRF token and is saved at once in the batch's store (``marks``). The
pages load nothing from elsewhere (a strict Content-Security-Policy), and a student's text is
rendered as sanitised markdown.
"""

from __future__ import annotations

import base64
import hmac
import html
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nh3
from flask import Flask, Response, abort, redirect, render_template, request, session, url_for
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

from grader.errors import GraderError
from grader.judge.answers import Answer
from grader.judge.written import WrittenGrade
from grader.reports.gradebooks import points_text
from grader.reports.pages import learning_curves as model_curves
from grader.reports.plots import learning_curves
from grader.review.batch import RESULTS_NAME, ReviewBatch
from grader.review.groups import NO_ANSWER, stance_of, suggest_groups
from grader.review.marks import Marks
from grader.spec.exercise import Spec

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# What a student's markdown may become: text formatting, lists, code, quotes, tables, links.
ALLOWED_TAGS = {
    "p", "br", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "hr", "a", "del", "sup", "sub",
}  # fmt: skip
LINK_SCHEMES = {"http", "https"}
# An answer shown in the app is cut here (the sheet and the notebook hold it whole)
MAX_RENDERED_CHARS = 20_000
# The hosts the app answers to: a page of another name that resolves to 127.0.0.1 (DNS rebinding) is refused.
LOCAL_HOST = re.compile(r"(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?", re.IGNORECASE)
# Opened in the browser instead of the address, which holds the token: a browser's arguments are
# readable by every user of the machine, this page by its owner only.
OPENER_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={address}">
<title>grader review</title></head>
<body><p>Opening the review: <a href="{address}">continue</a>.</p></body></html>
"""


def _image_as_text(
    renderer: RendererHTML, tokens: Sequence[Token], index: int, options: OptionsDict, env: EnvType
) -> str:
    """An image of a student's markdown as its description, marked as one: the page loads
    nothing from elsewhere, and the reviewer still sees that there was an image."""
    children = tokens[index].children
    described = renderer.renderInlineAsText(children, options, env) if children else ""
    return html.escape(f"[image: {described}]" if described else "[image]")


MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
MARKDOWN.add_render_rule("image", _image_as_text)


def render_markdown(text: str) -> Markup:
    """A student's text as HTML that can run nothing: raw HTML is escaped, then sanitised
    (a tag not allowed is dropped, its text kept; a link only to http or https). Past
    ``MAX_RENDERED_CHARS``, its start, and how long it is: a page shows the whole class's
    answers, and markdown of megabytes takes the parser seconds each."""
    cut = f"{text[:MAX_RENDERED_CHARS]}\n\n*(cut at {MAX_RENDERED_CHARS:,} of {len(text):,} characters)*"
    rendered = MARKDOWN.render(cut if len(text) > MAX_RENDERED_CHARS else text)
    return Markup(
        nh3.clean(
            rendered,
            tags=ALLOWED_TAGS,
            attributes={"a": {"href"}},
            url_schemes=LINK_SCHEMES,
            link_rel="noopener noreferrer",
        )
    )


def create_app(folder: Path, token: str, spec: Spec | None = None) -> Flask:
    """The review app over the batch graded into ``folder``, opened with ``token``; ``spec``:
    the exercise's, whose reference runs the learning curves are drawn over."""
    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(32)
    # A cookie of its own: cookies ignore the port, and another app on 127.0.0.1 would overwrite one named "session".
    app.config.update(
        SESSION_COOKIE_NAME=f"grader-review-{secrets.token_hex(4)}",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    # Flask escapes only templates named .html: ours are .html.j2, and every one shows student text.
    app.jinja_env.autoescape = True
    app.jinja_env.filters["markdown"] = render_markdown
    app.jinja_env.filters["points"] = points_text
    state = _State(folder, spec)

    @app.before_request
    def require_local_host() -> None:
        if not LOCAL_HOST.fullmatch(request.host):
            abort(
                403,
                f"this app answers to 127.0.0.1, localhost and [::1] only, not to the host {request.host[:100]!r}: "
                "open the address `grader review` printed",
            )

    @app.before_request
    def require_token() -> Response | None:
        given = request.args.get("token", "")
        if given and hmac.compare_digest(given.encode(), token.encode()):
            session["reviewer"] = True
            session.setdefault("csrf", secrets.token_urlsafe(24))
            if request.method == "GET":  # the token leaves the address bar at once
                return redirect(request.path)  # type: ignore[return-value]
        if not session.get("reviewer"):
            abort(403, "open the address `grader review` printed, with its token")
        posted = request.form.get("csrf", "").encode()
        if request.method == "POST" and not hmac.compare_digest(posted, session["csrf"].encode()):
            abort(403, "this form is stale or did not come from the review app: reload the page")
        return None

    @app.after_request
    def strict_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def index() -> str:
        batch, marks = state.current()
        grades = marks.grades(batch.answers())
        progress = {question.id: (_graded(_of(grades, question.id)), len(grades)) for question in batch.questions}
        return render_template("index.html.j2", batch=batch, progress=progress, csrf=session["csrf"])

    @app.get("/questions/<question_id>")
    def question_page(question_id: str) -> str:
        batch, marks = state.current()
        question = marks.question(batch.question(question_id).id)
        answers = {submission: batch.answer(submission, question.id) for submission in batch.submissions}
        stances = {
            s: stance_of(question, answer, batch.measured(s)) for s, answer in answers.items() if answer.answered
        }
        suggested = suggest_groups(answers, stances)
        groups: dict[str, list[str]] = {}
        moved = {s: group for s, group in marks.moved(question.id).items() if s in answers}  # still in the batch
        for submission, group in {**suggested, **moved}.items():
            groups.setdefault(group, []).append(submission)
        grades = _of(marks.grades(batch.answers()), question.id)
        ordered = sorted(groups.items(), key=lambda entry: (entry[0] == NO_ANSWER, -len(entry[1]), entry[0]))
        return render_template(
            "question.html.j2",
            batch=batch,
            question=question,
            groups=ordered,
            answers=answers,
            grades=grades,
            graded=_graded(grades),
            stances=stances,
            remarks={s: batch.remarks(s, answers[s]) for s in answers},
            csrf=session["csrf"],
        )

    @app.post("/questions/<question_id>/apply")
    def apply(question_id: str) -> Any:
        batch, marks = state.current()
        batch.question(question_id)  # an unknown one is refused, naming the batch's
        submissions = request.form.getlist("submission")
        unknown = [s for s in submissions if s not in batch.submissions]
        if unknown or not submissions:
            abort(400, f"unknown submissions {unknown}" if unknown else "no submission named")
        answers = [batch.answer(s, question_id) for s in submissions]
        # The texts the page showed: an answer regraded since then is not graded unseen.
        if request.form.getlist("digest") != [answer.digest for answer in answers]:
            abort(409, "an answer changed since this page was drawn (the batch was graded again): reload the page")
        on = request.form.get("on") == "1"
        marks.apply(question_id, request.form["item"], list(zip(submissions, answers, strict=True)), on)
        return _back(question_id, request.form.get("anchor"))

    @app.post("/questions/<question_id>/items/<item_id>")
    def set_points(question_id: str, item_id: str) -> Any:
        _, marks = state.current()
        try:
            points = float(request.form["points"])
        except ValueError:
            points = math.nan
        if not math.isfinite(points):
            abort(400, f"points must be a number; received {request.form['points']!r}")
        marks.set_points(question_id, item_id, points)
        return _back(question_id, "rubric")

    @app.post("/questions/<question_id>/comment")
    def comment(question_id: str) -> Any:
        batch, marks = state.current()
        submission, answer = _shown_answer(batch, question_id)
        marks.set_comment(submission, answer, request.form.get("comment", ""))
        return _back(question_id, request.form.get("anchor"))

    @app.post("/questions/<question_id>/move")
    def move(question_id: str) -> Any:
        batch, marks = state.current()
        submission, _ = _shown_answer(batch, question_id)
        group = (request.form.get("group") or "").strip()
        if not group:
            abort(400, "name the group to move the answer to")
        marks.move(submission, question_id, group[:120])
        return _back(question_id, request.form.get("anchor"))

    @app.get("/curves")
    def curves() -> Response:
        """A model's learning curves as SVG, fetched by the page's images one by one (the page
        itself need not wait for dozens of plots)."""
        batch, _ = state.current()
        submission = _known(batch, request.args.get("submission", ""))
        drawn = state.curves(submission, request.args.get("model", ""))
        if drawn is None:
            abort(404, "no training history was recorded for this model")
        svg = base64.b64decode(drawn.split(",", 1)[1])
        return Response(svg, mimetype="image/svg+xml")

    @app.errorhandler(GraderError)
    def unknown(error: GraderError) -> tuple[str, int]:
        return render_template("refused.html.j2", reason=str(error)), 404

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(409)
    def refused(error: Any) -> tuple[str, int]:
        return render_template("refused.html.j2", reason=error.description), error.code

    return app


def _of(grades: dict[str, tuple[WrittenGrade, ...]], question_id: str) -> dict[str, WrittenGrade]:
    """Each submission's grade of its answer to ``question_id``."""
    return {submission: next(g for g in graded if g.question == question_id) for submission, graded in grades.items()}


def _graded(grades: dict[str, WrittenGrade]) -> int:
    return sum(grade.status == "graded" for grade in grades.values())


def _known(batch: ReviewBatch, submission: str) -> str:
    if submission not in batch.submissions:
        abort(400, f"unknown submission {submission[:200]!r}")
    return submission


def _shown_answer(batch: ReviewBatch, question_id: str) -> tuple[str, Answer]:
    """The submission a form names and its answer to ``question_id``, which must be the text the
    page showed (its digest posted with the form): a comment never lands on a text regraded since."""
    batch.question(question_id)  # an unknown one is refused, naming the batch's
    submission = _known(batch, request.form.get("submission", ""))
    answer = batch.answer(submission, question_id)
    if request.form.get("digest") != answer.digest:
        abort(409, "the answer changed since this page was drawn (the batch was graded again): reload the page")
    return submission, answer


def _back(question_id: str, anchor: str | None) -> Any:
    """Back to the question's page, at the answer just graded (its id quoted: a fragment only)."""
    fragment = f"#{quote(anchor, safe='')}" if anchor else ""
    return redirect(url_for("question_page", question_id=question_id) + fragment, code=303)


class _State:
    """The batch, read again when its ``results.json`` changes (a regrade while reviewing), the
    marks over it, and the learning curves drawn of it so far."""

    def __init__(self, folder: Path, spec: Spec | None) -> None:
        self.folder = folder
        self.spec = spec
        self._stamp: float | None = None
        self._batch: ReviewBatch | None = None
        self._marks: Marks | None = None
        self._drawn: dict[tuple[str, str], str | None] = {}
        self._reading = threading.Lock()
        # pyplot's figures and settings (rcParams) are global: one request thread draws at a time.
        self._drawing = threading.Lock()

    def current(self) -> tuple[ReviewBatch, Marks]:
        """The batch and its marks; read again (by one request thread) when the batch changed.
        The marks it replaces are left to close when the requests using them are done."""
        with self._reading:
            stamp = (self.folder / RESULTS_NAME).stat().st_mtime
            if self._batch is None or self._marks is None or stamp != self._stamp:
                self._batch = ReviewBatch.load(self.folder)
                self._marks = Marks(self.folder, self._batch.questions)
                self._stamp = stamp
                self._drawn = {}
            return self._batch, self._marks

    def curves(self, submission: str, model: str) -> str | None:
        """The model's loss and accuracy per epoch as the report draws them (a data URI)."""
        batch, _ = self.current()
        with self._drawing:
            if (submission, model) in self._drawn:
                return self._drawn[submission, model]
            result = batch.submissions[submission]
            record = result.models.get(model)
            spec = self.spec
            if record is None or not record.history:
                drawn = None
            elif spec is not None and spec.name == batch.spec_name and model in spec.model_names:
                drawn = model_curves(result, spec, spec.model(model))  # over the reference band, as the report
            else:
                drawn = learning_curves(record.history, {})
            self._drawn[submission, model] = drawn
            return drawn


def serve(
    folder: Path, port: int, open_browser: bool, announce: Callable[[str], None], spec: Spec | None = None
) -> None:
    """Serve the review on 127.0.0.1 until interrupted; ``announce`` is given its address. The
    browser is opened on a page of the owner's only that leads to the address (``OPENER_PAGE``)."""
    import webbrowser

    from werkzeug.serving import make_server

    token = secrets.token_hex(24)
    app = create_app(folder, token, spec)
    ReviewBatch.load(folder)  # a folder without a batch fails here, before anything listens
    server = make_server("127.0.0.1", port, app, threaded=True)
    address = f"http://127.0.0.1:{server.server_port}/?token={token}"
    announce(address)
    opener: Path | None = None
    try:
        if open_browser:
            opener = _opener_page(address)
            webbrowser.open(opener.as_uri())
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if opener is not None:
            shutil.rmtree(opener.parent, ignore_errors=True)


def _opener_page(address: str) -> Path:
    """An ``OPENER_PAGE`` leading to ``address``, readable by its owner only (mode 0600, in a
    folder of mode 0700 of its own); removed, with its folder, when the review stops."""
    folder = Path(tempfile.mkdtemp(prefix="grader-review-"))
    page = folder / "open.html"
    descriptor = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(OPENER_PAGE.format(address=html.escape(address, quote=True)))
    return page
