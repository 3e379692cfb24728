"""The HTML pages: a submission's page, its executed notebook rendered by nbconvert, and
the class page.

Pages are self-contained (plots are embedded SVG) and carry a Content Security
Policy that lets no script run but the class page's own table sorter: whatever
a student's notebook holds, it cannot run in an instructor's browser.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from html import escape

import nbformat
import nh3
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from nbconvert import HTMLExporter
from nbconvert.preprocessors.sanitize import SanitizeHTML
from pygments.formatters import HtmlFormatter

from grader.ingest.notebook import file_stem
from grader.judge.checks import CheckResult
from grader.judge.results import Drawings, Graded, GradeRun, ModelRecord, SubmissionResult
from grader.reports import plots
from grader.reports.similarity import ClassSimilarity
from grader.reports.summary import leaderboard, standing_of, summarize, typical_epoch_seconds
from grader.spec.architecture import Architecture, SummaryRow
from grader.spec.exercise import ModelSpec, Spec
from grader.spec.questions import Question

PAGES_DIR = "submissions"
NOTEBOOKS_DIR = "notebooks"
# Tags a student's markdown and HTML outputs may keep; anything else is shown as text.
# Markdown (and HTML outputs) rendered as such, per cell or output and per notebook; of the
# rest, the start is shown as plain text
MAX_MARKDOWN_CELL_CHARS = 8_000
MAX_MARKDOWN_CHARS = 80_000
SHOWN_PLAIN_CHARS = 4_000
SHOWN_PLAIN_TOTAL = 40_000
NOTEBOOK_TAGS = (
    *("a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6"),
    *("hr", "i", "img", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table", "tbody", "td"),
    *("th", "thead", "tr", "ul"),
)
PROTOCOLS = ("http", "https", "mailto", "data")
LINK_PREFIXES = ("http://", "https://", "mailto:", "#")
IMAGE_PREFIXES = tuple(f"data:image/{kind};base64," for kind in ("png", "jpeg", "gif", "svg+xml"))

_loader = PackageLoader("grader.reports", "templates")
_templates = Environment(
    loader=_loader,
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
VERDICT_MARKS = {"pass": "✓", "fail": "✗", "error": "!", "skipped": "–"}
SORT_SCRIPT = _templates.get_template("sort.js").render()


def _content_policy(script: str | None = None) -> str:
    """No network, no plugins, no forms; no script but ``script``, pinned by its hash."""
    allowed = "'none'"
    if script is not None:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        allowed = f"'sha256-{digest}'"
    return (
        f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {allowed}; "
        "base-uri 'none'; form-action 'none'"
    )


def plain_page(title: str, text: str) -> str:
    """A page of plain, escaped text: what is shown where a page could not be drawn."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
        f'content="{_content_policy()}"><title>{escape(title)}</title></head>'
        f"<body><h1>{escape(title)}</h1><pre>{escape(text)}</pre></body></html>\n"
    )


def page_name(submission_id: str) -> str:
    """A file name for a submission's page, whatever characters its id holds."""
    return file_stem(submission_id) + ".html"


# -- a submission's page -------------------------------------------------------------


@dataclass(frozen=True)
class LayerPair:
    """A row of the side-by-side layer table; ``None`` where one side has no layer. An
    improvement's layers are free: nothing to compare them with."""

    expected: SummaryRow | None
    actual: SummaryRow | None
    compared: bool = True

    @property
    def differs(self) -> bool:
        if not self.compared:
            return False
        if self.expected is None or self.actual is None:
            return True
        return not self.actual.layer.matches(self.expected.layer)


@dataclass(frozen=True)
class ModelSection:
    spec: ModelSpec
    record: ModelRecord | None
    checks: list[CheckResult]
    layers: list[LayerPair]
    expected_params: int | None
    actual_params: int | None
    curves: str | None  # plot data URI
    first_epoch: float | None
    typical_epoch: float | None
    reference_epoch: float | None


def _layer_pairs(expected: Architecture, actual: Architecture | None, compared: bool) -> list[LayerPair]:
    want = expected.summary()
    have = actual.summary() if actual is not None else []
    return [
        LayerPair(want[index] if index < len(want) else None, have[index] if index < len(have) else None, compared)
        for index in range(max(len(want), len(have)))
    ]


def _model_section(
    result: SubmissionResult, spec: Spec, model: ModelSpec, drawn: Mapping[str, str | None]
) -> ModelSection:
    """``drawn``: plots drawn already, by model name; the model's is drawn here if it is not there."""
    record = result.models.get(model.name)
    expected = spec.expected_architecture(model)
    architecture = record.architecture if record else None
    calibration = spec.calibration.models.get(model.name)
    times = record.epoch_times if record else ()
    return ModelSection(
        spec=model,
        record=record,
        checks=[check for check in result.checks if check.id.startswith(f"{model.name}.")],
        layers=_layer_pairs(expected, architecture, compared=model.kind == "fixed"),
        expected_params=expected.param_count(),
        actual_params=architecture.param_count() if architecture else None,
        curves=drawn[model.name] if model.name in drawn else learning_curves(result, spec, model),
        first_epoch=times[0] if times else None,
        typical_epoch=typical_epoch_seconds(times),
        reference_epoch=calibration.median_epoch_seconds if calibration else None,
    )


def learning_curves(result: SubmissionResult, spec: Spec, model: ModelSpec) -> str | None:
    """The plot of ``model``'s training in ``result``, over the reference runs' band, as a data URI."""
    record = result.models.get(model.name)
    calibration = spec.calibration.models.get(model.name)
    return plots.learning_curves(record.history if record else {}, calibration.bands if calibration else {})


def improvement_standing(result: SubmissionResult, run: GradeRun, spec: Spec) -> str | None:
    """Where the submission's improvement stands among the class's, if the spec has one."""
    model = next((model.name for model in spec.models if model.kind == "improvement"), None)
    return standing_of(leaderboard(run, model), result.id) if model else None


def submission_page(
    result: SubmissionResult,
    run: GradeRun,
    spec: Spec,
    notebook_link: str | None,
    curves: Mapping[str, str | None] | None = None,
) -> str:
    """``curves``: the models' plots where they were drawn already (``draw_parts``); the
    others are drawn here."""
    return _templates.get_template("submission.html.j2").render(
        result=result,
        run=run,
        spec=spec,
        standing=improvement_standing(result, run, spec),
        sections=[_model_section(result, spec, model, curves or {}) for model in spec.models],
        notebook_link=notebook_link,
        written={grade.question: grade for grade in run.written.get(result.id, ())},
        answers={answer.question: answer for answer in result.answers},
        content_policy=_content_policy(),
        drawn_from=Markup(DIGEST_META.format(digest=submission_page_digest(result, run, spec, notebook_link))),
    )


def submission_page_digest(result: SubmissionResult, run: GradeRun, spec: Spec, notebook_link: str | None) -> str:
    """A digest of everything a submission page shows: a page drawn from the same digest is the
    same page, and need not be drawn again. The page carries it (``DIGEST_META``)."""
    shown = {
        "result": result.to_dict(),
        "run": [run.grader_version, run.mode, run.spec],
        "spec": spec.digest,
        "standing": improvement_standing(result, run, spec),
        "notebook_link": notebook_link,
        "written": [grade.to_dict() for grade in run.written.get(result.id, ())],
        "questions": [question.to_dict() for question in run.questions],
        "partial": run.partial,
        "templates": _page_templates_digest(),
    }
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:32]


@functools.cache
def _page_templates_digest() -> str:
    """The templates a submission page is drawn from, read once per process."""
    sources = "".join(_loader.get_source(_templates, name)[0] for name in PAGE_TEMPLATES)
    return hashlib.sha256(sources.encode()).hexdigest()


PAGE_TEMPLATES = ("base.html.j2", "submission.html.j2")
# How a submission page names the digest it was drawn from
DIGEST_META = '<meta name="grader-drawn-from" content="{digest}">'


def sanitized_html(html: str) -> str:
    """``html`` with only the tags of ``NOTEBOOK_TAGS`` and the attributes ``_allowed_attribute``
    lets through: no event handler, no ``javascript:`` link, images only as data URIs. The
    exported page is cleaned whole, since a notebook's markdown links and an output's metadata
    (an image's ``width``) reach it past nbconvert's own sanitiser."""
    # nh3 lets through the attributes named here, each then as _allowed_attribute judges its value.
    named = {
        "*": {"class", "id", "title", "width", "height", "colspan", "rowspan"},
        "a": {"href"},
        "img": {"alt", "src"},
    }
    return nh3.clean(
        html,
        tags=set(NOTEBOOK_TAGS),
        attributes=named,
        attribute_filter=lambda tag, name, value: value if _allowed_attribute(tag, name, value) else None,
        url_schemes=set(PROTOCOLS),
        link_rel=None,  # the links as the student wrote them, as the page showed them before
    )


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "id", "title") or (tag == "img" and name == "alt"):
        return True
    if tag == "a" and name == "href":
        return value.startswith(LINK_PREFIXES)
    if tag == "img" and name == "src":
        return value.startswith(IMAGE_PREFIXES)
    if name in ("width", "height", "colspan", "rowspan"):
        return value.isdigit()
    return False


def notebook_html(notebook_json: str) -> str:
    """The notebook as it ran, as HTML, sanitised: a student's HTML keeps its look, never its
    scripts. Markdown past ``MAX_MARKDOWN_CELL_CHARS`` a cell or ``MAX_MARKDOWN_CHARS`` in all
    is shown as the start of its plain text: nbconvert's markdown parser, link filter and
    sanitiser take quadratic time on some text (50,000 ``[`` took them 37 s), and this runs on
    the grader's host."""
    notebook = nbformat.reads(notebook_json, as_version=4)  # type: ignore[no-untyped-call]
    _plain_past_budget(notebook)
    exporter = HTMLExporter(template_name="basic")  # type: ignore[no-untyped-call]
    exporter.register_preprocessor(SanitizeHTML(tags=NOTEBOOK_TAGS), enabled=True)  # type: ignore[no-untyped-call]
    body, _ = exporter.from_notebook_node(notebook)
    return sanitized_html(body)


def _plain_past_budget(notebook: nbformat.NotebookNode) -> None:
    """Markdown cells and markdown or HTML outputs past the budget become the start of their
    text (``SHOWN_PLAIN_CHARS``, fewer once ``SHOWN_PLAIN_TOTAL`` are shown so), escaped and
    preformatted (which the parser takes whole as one HTML block: it ends at ``</pre>``, which
    escaped text cannot hold), and a line that says how long they were."""
    budget, plain = MAX_MARKDOWN_CHARS, SHOWN_PLAIN_TOTAL
    for cell in notebook.cells:
        if cell.get("cell_type") == "markdown":
            source = str(cell.get("source", ""))
            if len(source) > min(MAX_MARKDOWN_CELL_CHARS, budget):
                shown = source[: min(SHOWN_PLAIN_CHARS, plain)]
                plain -= len(shown)
                # "[" as an entity too: nbconvert's link filter takes quadratic time on runs of "[x]("
                cell.source = f"<pre>{escape(shown).replace('[', '&#91;')}</pre>\n\n*{_too_long(source, shown)}*"
            else:
                budget -= len(source)
        for output in cell.get("outputs", ()):
            data = output.get("data", {})
            for kind in ("text/markdown", "text/html"):
                text = data.get(kind)
                if isinstance(text, str) and len(text) > min(MAX_MARKDOWN_CELL_CHARS, budget):
                    shown = text[: min(SHOWN_PLAIN_CHARS, plain)]
                    plain -= len(shown)
                    data.pop(kind)
                    data.setdefault("text/plain", f"{shown}\n\n{_too_long(text, shown)}")
                elif isinstance(text, str):
                    budget -= len(text)


def _too_long(text: str, shown: str) -> str:
    return f"(shown as plain text, cut at {len(shown):,} of its {len(text):,} characters: the notebook holds it whole)"


def notebook_page(result: SubmissionResult, body: str, mode: str) -> str:
    """The page of the notebook as it ran, around its ``notebook_html``."""
    return _templates.get_template("notebook.html.j2").render(
        result=result,
        result_page=page_name(result.id),
        mode=mode,
        body=body,
        highlight_css=HtmlFormatter(style="default").get_style_defs(".highlight"),
        content_policy=_content_policy(),
    )


def draw_parts(graded: Graded, spec: Spec) -> Graded:
    """``graded`` with the slow parts of its pages drawn (``Drawings``): run by the worker that
    graded it, so that many workers draw at once. What cannot be drawn here is left out, to be
    drawn, or replaced by a page that says why, where the pages are written."""
    try:
        body = notebook_html(graded.notebook) if graded.notebook is not None else None
    except Exception:
        body = None
    curves: dict[str, str | None] = {}
    for model in spec.models:
        try:
            curves[model.name] = learning_curves(graded.result, spec, model)
        except Exception:
            continue
    return replace(graded, drawings=Drawings(body, curves))


# -- the class page ------------------------------------------------------------------


def index_page(run: GradeRun, spec: Spec, similarity: ClassSimilarity | None = None) -> str:
    """The class page; with ``similarity``, a section of the pairs found similar."""
    summary = summarize(run)
    accepted = {model.name: (model.accuracy.min, model.accuracy.max) for model in spec.models if model.accuracy}
    # Quick grades train on a slice: their epochs compare with no reference run.
    reference_times = {
        name: (min(calibration.later_epoch_seconds), max(calibration.later_epoch_seconds))
        for name, calibration in spec.calibration.models.items()
        if calibration.later_epoch_seconds and run.mode == "full"
    }
    metric = spec.data.metric.name
    figures = {
        "scores": plots.score_histogram(summary.scores, summary.max_score) if summary.submissions else None,
        "checks": plots.pass_rates(summary.check_rates) if summary.check_rates else None,
        "accuracy": plots.distribution(
            summary.test_values, f"test {metric}, measured by the grader", f"Test {metric}", accepted, "accepted range"
        ),
        "epochs": plots.distribution(
            summary.epoch_seconds,
            "seconds per epoch (median, first epoch left out)",
            "Epoch time",
            reference_times,
            f"reference runs on {spec.calibration.describe_machine()}",
        ),
    }
    improvement = next((model for model in spec.models if model.kind == "improvement"), None)
    written = written_progress(run)
    return _templates.get_template("index.html.j2").render(
        run=run,
        metric=metric,
        improvement=improvement,
        board=leaderboard(run, improvement.name) if improvement else (),
        similarity=similarity,
        summary=summary,
        figures=figures,
        columns=[(model.name, list(model.points)) for model in spec.models],
        marks=VERDICT_MARKS,
        short_names={"architecture": "arch.", "optimizer": "optim.", "accuracy": "acc."},
        page_name=page_name,
        written=written,
        written_figures={
            row.question.id: plots.score_histogram(
                [points for points, count in row.points.items() for _ in range(count)],
                row.question.points,
                f"{row.question.id}: points given",
            )
            for row in written
            if row.graded
        },
        sort_script=SORT_SCRIPT,
        content_policy=_content_policy(SORT_SCRIPT),
    )


@dataclass(frozen=True)
class WrittenProgress:
    """How far the grading of one written question has come, and the points given so far."""

    question: Question
    graded: int
    answered: int
    submissions: int
    points: dict[float, int]  # points given -> how many answers got them

    @property
    def mean(self) -> float | None:
        return sum(p * n for p, n in self.points.items()) / self.graded if self.graded else None


def written_progress(run: GradeRun) -> list[WrittenProgress]:
    """Per written question: answers graded of the class's, and the spread of their points."""
    rows = []
    for question in run.questions:
        given: dict[float, int] = {}
        for grades in run.written.values():
            for grade in grades:
                if grade.question == question.id and grade.points is not None:
                    given[grade.points] = given.get(grade.points, 0) + 1
        answered = sum(1 for r in run.submissions for a in r.answers if a.question == question.id and a.answered)
        graded = sum(given.values())
        rows.append(WrittenProgress(question, graded, answered, len(run.submissions), dict(sorted(given.items()))))
    return rows


def similarity_page(title: str, similarity: ClassSimilarity) -> str:
    """The pairs of a class found similar, on a page of their own."""
    return _templates.get_template("similarity.html.j2").render(
        title=title,
        count=similarity.compared,
        pairs=similarity.pairs,
        threshold=similarity.threshold,
        content_policy=_content_policy(),
    )
