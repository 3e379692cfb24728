"""How well the written answers are found in real notebooks: the text ``find_answers`` gives
each question, against hand labels of where each student answered it.

The notebooks and their labels stay outside the repository (they are the students' words); the
labels are JSON, one entry per notebook (``NN`` for ``NN.ipynb`` in the same folder):

    {"NN": {"source": "...", "q1": {"answered": true, "cells": [12],
            "must_contain": ["verbatim words of the student's answer"],
            "must_not_contain": ["a sentence of the handout beside it"]}, "q2": ..., "q3": ...}}

A slot agrees when a question the student answered comes back holding every ``must_contain``
phrase and no ``must_not_contain`` one (nor another question's phrases), and a question the
student left unanswered comes back empty. The notebooks are read as one class, as ``grader
grade`` reads a folder (the sentences most of them hold are the handout's), or each alone, as
``grader check`` reads one (``--alone``). Prints each slot that disagrees, then the agreement.

usage: python benchmarks/answers_corpus.py LABELS.json [--spec SPEC.toml] [--alone]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import nbformat

from grader.judge.answers import class_sentences, find_answers, markdown_sentences
from grader.spec.exercise import DEFAULT_SPEC, load_spec


def slot_agrees(found: str, label: dict[str, Any], others: list[str]) -> str | None:
    """Why the text ``found`` for a question disagrees with its ``label``; None when it agrees.
    ``others``: the phrases labelled as the notebook's other answers."""
    flat = " ".join(found.split())
    if not label["answered"]:
        return None if not flat else f"no answer labelled, found {flat[:80]!r}"
    if not flat:
        return "answered, found nothing"
    missing = [phrase for phrase in label["must_contain"] if " ".join(phrase.split()) not in flat]
    stray = [phrase for phrase in [*label["must_not_contain"], *others] if " ".join(phrase.split()) in flat]
    if missing or stray:
        return f"missing {missing}; holds {stray}; found {flat[:120]!r}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels", type=Path)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--alone", action="store_true", help="each notebook without its class")
    arguments = parser.parse_args()
    spec = load_spec(arguments.spec)
    handout = nbformat.read(spec.handout, as_version=4) if spec.handout else None
    labels: dict[str, dict[str, Any]] = json.loads(arguments.labels.read_text())
    notebooks = {
        name: nbformat.read(arguments.labels.parent / "notebooks" / f"{name}.ipynb", as_version=4) for name in labels
    }
    class_text = (
        frozenset() if arguments.alone else class_sentences([markdown_sentences(nb) for nb in notebooks.values()])
    )
    agreed = total = 0
    for name, labelled in sorted(labels.items()):
        answers = find_answers(notebooks[name], spec.questions, handout, class_text=class_text)
        found = {answer.question: answer.text for answer in answers}
        for question in spec.questions:
            others = [p for q in spec.questions if q.id != question.id for p in labelled[q.id]["must_contain"]]
            why = slot_agrees(found.get(question.id, ""), labelled[question.id], others)
            total += 1
            agreed += why is None
            if why is not None:
                print(f"{name} {question.id}: {why}")
    read = "each alone" if arguments.alone else "as one class"
    print(f"{agreed} of {total} question slots agree ({len(labels)} notebooks read {read}, spec {arguments.spec.name})")


if __name__ == "__main__":
    main()
