"""MkDocs hooks: the reference pages' tables generated from the code at build time, so that
nothing in them is typed twice. A page holds a marker; the hook puts the table in its place.

- ``<!-- grader-help -->``: what ``grader --help`` prints (the commands, the exit codes);
- ``<!-- spec-keys -->``: every key a spec may hold, from the table the spec loader checks
  specs against (``grader.spec.keys``);
- ``<!-- results-schema -->``: the fields of results.json, from its published JSON Schema
  (``grader/reports/results.schema.json``), which the site also serves as a file.

Before the build, the pictures of the reports are refreshed from the screenshots the browser
tests took from a real grading of the samples, when ``$GRADER_TEST_ARTIFACTS`` names their
folder (``tox -e docs`` runs those tests first); a picture they did not take is kept as it is."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from grader.reports import RESULTS_SCHEMA
from grader.spec.keys import keys_markdown

# The browser tests' screenshot -> the documentation's picture
PICTURES = {
    "class-page.png": "class-page.png",
    "submission-page-top.png": "submission-page.png",
    "review-question.png": "review-question.png",
    "check-button.png": "check-button.png",
    "check-verdicts.png": "check-verdicts.png",
}
log = logging.getLogger("mkdocs.hooks.reference")
SCHEMA_ON_SITE = "reference/results.schema.json"
MARKERS = {
    "<!-- grader-help -->": lambda: grader_help(),  # defined below
    "<!-- spec-keys -->": keys_markdown,
    "<!-- results-schema -->": lambda: schema_markdown(RESULTS_SCHEMA),
}


def on_pre_build(config: Any, **_: Any) -> None:
    taken = os.environ.get("GRADER_TEST_ARTIFACTS")
    if not taken:
        return
    for screenshot, picture in PICTURES.items():
        if (Path(taken) / screenshot).is_file():
            shutil.copyfile(Path(taken) / screenshot, Path(config["docs_dir"]) / "images" / picture)
        else:  # info, not a warning: --strict would fail the build over a skipped browser test
            log.info("no %s in %s (did the browser tests skip?): the picture %s is kept", screenshot, taken, picture)


def on_page_markdown(markdown: str, **_: Any) -> str:
    for marker, render in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown


def on_files(files: Any, config: Any, **_: Any) -> Any:
    """The schema itself, served beside its page."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, SCHEMA_ON_SITE, abs_src_path=str(RESULTS_SCHEMA)))
    return files


def grader_help() -> str:
    """``grader --help``, as a terminal shows it."""
    import click

    from grader.cli import cli

    with click.Context(cli, info_name="grader", terminal_width=100) as context:
        return f"```text\n{cli.get_help(context)}\n```"


def schema_markdown(path: Path) -> str:
    """A table per object of the schema: each field, its type and what it means."""
    schema = json.loads(path.read_text())
    objects = {"results.json": schema, **schema["$defs"]}
    parts = []
    for name, node in objects.items():
        parts += [f"### `{name}`", ""]
        if "description" in node:
            parts += [node["description"], ""]
        parts += ["| field | type | meaning |", "|---|---|---|"]
        required = set(node.get("required", ()))
        # Fields one of the alternatives requires (a model's measurements, named by its metric)
        alternative = {field for option in node.get("oneOf", ()) for field in option.get("required", ())}
        for field, spec in node["properties"].items():
            optional = "" if field in required else " (per `metric`)" if field in alternative else " (optional)"
            meaning = spec.get("description", "").replace("|", "\\|")
            parts.append(f"| `{field}`{optional} | {type_of(spec)} | {meaning} |")
        parts.append("")
    return "\n".join(parts)


def type_of(spec: dict[str, Any]) -> str:
    """A field's type as a reader says it: ``number or null``, ``one of `pass`, `fail` ``, `` `2` ``,
    ``array of check``, a link to another object of the schema."""
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name})"
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    if "enum" in spec:
        return "one of " + ", ".join("`null`" if value is None else f"`{value}`" for value in spec["enum"])
    if "oneOf" in spec:
        return " or ".join(type_of(option) for option in spec["oneOf"])
    kinds = spec.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "array" in kinds and "items" in spec:
        kinds = [f"array of {type_of(spec['items'])}" if kind == "array" else kind for kind in kinds]
    if "object" in kinds and isinstance(spec.get("additionalProperties"), dict):
        kinds = [f"object of {type_of(spec['additionalProperties'])}" if kind == "object" else kind for kind in kinds]
    return " or ".join(kinds)
