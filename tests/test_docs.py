"""The documentation: a short README with the two set-up commands and the pictures, a site whose
front page reaches the four tasks readers come for in one click, every page of its navigation
present, and the reference pages' generated parts complete. ``tox -e docs`` builds the site
itself with ``mkdocs build --strict``."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType

import yaml

from grader.cli import cli
from grader.reports import RESULTS_SCHEMA
from grader.spec.keys import SPEC_KEYS
from tests.conftest import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"


def hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nav_pages(entries: list) -> list[str]:
    pages = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def links(markdown: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", markdown)


def test_the_readme_is_short_opens_with_the_two_commands_and_shows_the_pictures():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    commands = re.search(r"```sh\n(.*?)```", text, re.S)
    assert commands and text.index("```sh") < 200
    assert "grader grade submissions/ --out reports/" in commands.group(1)
    assert ".venv/bin/tox" in commands.group(1)
    pictures = [link for link in links(text) if link.endswith(".png")]
    assert {"docs/images/class-page.png", "docs/images/submission-page.png"} <= set(pictures)
    assert all((ROOT / picture).is_file() for picture in pictures)


def test_every_page_of_the_navigation_exists_and_every_page_is_in_it():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = nav_pages(config["nav"])
    assert len(pages) == len(set(pages))
    assert {page for page in pages if not (DOCS / page).is_file()} == set()
    assert {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")} == set(pages)


def test_the_front_page_reaches_the_four_tasks_in_one_click():
    front = (DOCS / "index.md").read_text()
    targets = set(links(front))
    for page in ("instructors/grade-a-class.md", "students.md", "authors/new-exercise.md", "written-answers.md"):
        assert page in targets, f"the front page does not link {page}"


def test_relative_links_between_pages_lead_to_pages_and_pictures_that_exist():
    broken = []
    for page in DOCS.rglob("*.md"):
        for link in links(page.read_text()):
            target = link.split("#")[0]
            served = target == "results.schema.json"  # put beside its page by the hooks at build time
            if target and not served and not re.match(r"[a-z]+:", target) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(DOCS)} -> {link}")
    assert broken == []


def test_the_readme_links_lead_to_files_of_the_repository():
    targets = [link.split("#")[0] for link in links(README.read_text()) if not re.match(r"[a-z]+:", link)]
    assert targets and [target for target in targets if not (ROOT / target).exists()] == []


def test_the_hooks_generate_the_cli_spec_and_results_references_from_the_code():
    module = hooks()
    page = module.on_page_markdown("<!-- grader-help -->\n<!-- spec-keys -->\n<!-- results-schema -->")
    assert "<!--" not in page
    for command in cli.commands:
        assert f"\n  {command} " in page, f"grader --help lacks {command}"
    assert "Exit codes:" in page
    assert all(f"`{key.name}`" in page or key.name.startswith("(") for key in SPEC_KEYS)
    schema = json.loads(RESULTS_SCHEMA.read_text())
    for name, node in {"results.json": schema, **schema["$defs"]}.items():
        assert f"### `{name}`" in page
        assert all(f"| `{field}`" in page for field in node["properties"])


def test_each_family_of_commands_has_its_module_and_its_section_in_the_reference():
    reference = (DOCS / "reference" / "cli.md").read_text()
    documented = set(re.findall(r":command: (\w+)", reference))
    assert documented == set(cli.commands)
    for module in set(re.findall(r":module: grader\.cli\.(\w+)", reference)):
        assert (ROOT / "grader" / "cli" / f"{module}.py").is_file()
