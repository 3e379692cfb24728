"""The exercise's written questions, read from the spec's ``[[questions]]``: each with the
words that find the answer in a notebook, its rubric, and what the grader measured that the
answer is about. See ``reference/mnist_mlp.toml``."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from grader.spec.keys import check_keys

Scoring = Literal["positive", "negative"]
SCORINGS = ("positive", "negative")
# What an answer takes a side on, so that answers can be grouped by it: which of the question's
# models it prefers, or whether it says the improvement improved.
Stance = Literal["preferred_model", "improved"]
STANCES = ("preferred_model", "improved")


@dataclass(frozen=True)
class RubricItem:
    """One rubric line, Gradescope style: applied to an answer, it adds its points (negative ones
    take away)."""

    id: str
    title: str
    points: float
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Question:
    """A written question. ``prompt`` is how the handout asks it (and ``also_asked_as`` how course
    variants do): the answer is found after it. ``positive`` scoring starts from 0 and adds the
    items applied; ``negative`` starts from ``points`` and adds them (they are deductions); the
    result is kept within 0 and ``points``. ``models``: the models whose measurements are shown
    beside each answer; ``curves``: their learning curves too."""

    id: str
    title: str
    points: float
    prompt: str
    rubric: tuple[RubricItem, ...]
    also_asked_as: tuple[str, ...] = ()
    scoring: Scoring = "positive"
    stance: Stance | None = None
    models: tuple[str, ...] = ()
    curves: bool = False
    # Words (or their stems) an answer to it uses, in the languages the class writes in: where
    # answers to several questions share a paragraph, each sentence goes to the question whose
    # words it has
    cues: tuple[str, ...] = ()

    @property
    def wordings(self) -> tuple[str, ...]:
        return (self.prompt, *self.also_asked_as)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Question:
        """A question as ``to_dict`` wrote it (into ``results.json``)."""
        sequences = {key: tuple(data.get(key, ())) for key in ("also_asked_as", "models", "cues")}
        rubric = tuple(RubricItem(**item) for item in data["rubric"])
        return cls(**{**data, **sequences, "rubric": rubric})


def item_id(title: str) -> str:
    """An item's id from its title when the spec gives none: "Prefers model_2" -> "prefers-model-2"."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "item"


def read_questions(entries: list[dict[str, Any]], model_names: list[str]) -> tuple[Question, ...]:
    """The spec's ``[[questions]]``; a ``ValueError`` names the question and the key at fault."""
    questions = tuple(_question(entry, model_names) for entry in entries)
    ids = [question.id for question in questions]
    duplicated = sorted({id_ for id_ in ids if ids.count(id_) > 1})
    if duplicated:
        raise ValueError(f"[[questions]] ids must differ; repeated: {duplicated}")
    return questions


def _question(entry: dict[str, Any], model_names: list[str]) -> Question:
    name = str(entry.get("id", "?"))
    check_keys("questions", entry, f"question {name}")
    scoring = entry.get("scoring", "positive")
    if scoring not in SCORINGS:
        raise ValueError(f"question {name} has scoring {scoring!r}; expected one of {list(SCORINGS)}")
    stance = entry.get("stance")
    if stance is not None and stance not in STANCES:
        raise ValueError(f"question {name} has stance {stance!r}; expected one of {list(STANCES)}")
    models = tuple(str(model) for model in entry.get("models", ()))
    strangers = [model for model in models if model not in model_names]
    if strangers:
        raise ValueError(f"question {name} shows models {strangers} that the spec does not define ({model_names})")
    if stance == "preferred_model" and len(models) < 2:
        raise ValueError(f"question {name} asks which model is preferred: list at least two in its models")
    if stance == "improved" and not models:
        raise ValueError(f"question {name} asks whether the improvement improved: name it first in its models")
    rubric = tuple(_item(name, item) for item in entry.get("rubric", ()))
    if not rubric:
        raise ValueError(f"question {name} has no rubric: give it at least one [[questions.rubric]] item")
    item_ids = [item.id for item in rubric]
    if len(set(item_ids)) != len(item_ids):
        raise ValueError(f"question {name}'s rubric items must have different ids (or titles): {item_ids}")
    return Question(
        id=str(entry["id"]),
        title=str(entry["title"]),
        points=float(entry["points"]),
        prompt=str(entry["prompt"]),
        rubric=rubric,
        also_asked_as=tuple(str(text) for text in entry.get("also_asked_as", ())),
        scoring=scoring,
        stance=stance,
        models=models,
        curves=bool(entry.get("curves", False)),
        cues=tuple(str(cue).lower() for cue in entry.get("cues", ()) if str(cue).strip()),
    )


def _item(question: str, entry: dict[str, Any]) -> RubricItem:
    check_keys("rubric", entry, f"a rubric item of question {question}")
    title = str(entry["title"])
    return RubricItem(
        id=str(entry.get("id", item_id(title))),
        title=title,
        points=float(entry["points"]),
        description=str(entry.get("description", "")),
    )
