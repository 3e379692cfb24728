"""Which of a notebook's models is which model of the spec.

A fixed model is the one bound to its name at the end of the notebook; when there is none,
the trained model no other name claimed that is most like it (its layers, then its training)
stands in for it, with a warning naming its variable. An improvement is chosen among the
models left: the one the student marked with a ``# improvement`` comment in a cell that
built, compiled or trained it, else the one bound to the improvement's name, else the last
trained; the others are reported. Pure Python.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from grader.judge.facts import KernelFacts, ModelFacts
from grader.spec.exercise import ModelSpec, Spec
from grader.spec.layers import Layer

IMPROVEMENT_MARK = re.compile(r"#\s*improvement\b", re.IGNORECASE)


def assign_models(
    spec: Spec, facts: KernelFacts, cell_sources: Sequence[str]
) -> tuple[dict[str, ModelFacts], list[str]]:
    """The model graded for each spec name that has one, and warnings about the choices."""
    assigned: dict[str, ModelFacts] = {}
    notes: list[str] = []
    left = list(facts.unclaimed)
    for model_spec in spec.models:
        if model_spec.kind != "fixed":
            continue
        if model_spec.name in facts.models:
            assigned[model_spec.name] = facts.models[model_spec.name]
            continue
        found = _closest(spec, model_spec, left)
        if found is not None:
            left.remove(found)
            assigned[model_spec.name] = dataclasses.replace(found, name=model_spec.name)
            notes.append(
                f"no model was left in a variable called {model_spec.name}; {_where(found)} is the most like it "
                f"and is graded as {model_spec.name}"
            )
    for model_spec in spec.models:
        if model_spec.kind == "improvement":
            chosen, note = _improvement(model_spec, facts.models.get(model_spec.name), left, cell_sources)
            if chosen is not None:
                assigned[model_spec.name] = chosen
                left = [model for model in left if model is not chosen]
            notes.extend(note)
    return assigned, notes


def _where(model: ModelFacts) -> str:
    """``the model in variable mlp (trained in cell 14)``, or as near as is known."""
    variable = f"the model in variable {model.name}" if model.variables else "a model"
    return variable + (f" (trained in cell {model.cell})" if model.cell is not None else "")


def _closest(spec: Spec, model_spec: ModelSpec, candidates: list[ModelFacts]) -> ModelFacts | None:
    """The candidate most like ``model_spec``, if it is like it at all: at most half its
    layers differ. Ties go to the one trained for the spec's epochs, then the later one."""
    expected = spec.expected_architecture(model_spec).compared_layers()
    scored = []
    for candidate in candidates:
        if candidate.architecture is None:
            continue
        distance = _layer_distance(expected, candidate.architecture.compared_layers())
        if distance <= len(expected) // 2:
            epochs = sum(fit.epochs_run or 0 for fit in candidate.fits)
            scored.append((distance, epochs != model_spec.epochs, -(candidate.cell or 0), candidate))
    return min(scored, key=lambda item: item[:3])[3] if scored else None


def _layer_distance(expected: Sequence[Layer], actual: Sequence[Layer]) -> int:
    """Layers to add, remove or change to turn ``actual`` into ``expected`` (edit distance)."""
    row = list(range(len(actual) + 1))
    for i, want in enumerate(expected, start=1):
        previous, row[0] = row[0], i
        for j, have in enumerate(actual, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (not have.matches(want)))
    return row[-1]


def _improvement(
    model_spec: ModelSpec, named: ModelFacts | None, left: list[ModelFacts], cell_sources: Sequence[str]
) -> tuple[ModelFacts | None, list[str]]:
    """The improvement to grade, and what was said about the choice."""
    candidates = [model for model in [named, *left] if model is not None and model.fits]
    if not candidates:
        return None, []
    marked = [model for model in candidates if any(_marked(cell, cell_sources) for cell in model.cells)]
    if marked:
        chosen, why = marked[-1], "the one marked # improvement"
    elif named is not None and named.fits:
        chosen, why = named, f"the one called {model_spec.name}"
    else:
        chosen, why = max(candidates, key=lambda model: model.cell or 0), "the last one trained"
    notes = []
    if chosen is not named:
        notes.append(f"{_where(chosen)} is graded as the improvement, {model_spec.name}")
    others = [model for model in candidates if model is not chosen]
    if others:
        listed = ", ".join(_where(model) for model in others[:5])
        notes.append(
            f"besides the improvement graded ({why}), the notebook trained {listed}; mark the one to grade with "
            "a # improvement comment in its cell"
        )
    return dataclasses.replace(chosen, name=model_spec.name), notes


def _marked(cell: int, cell_sources: Sequence[str]) -> bool:
    return 0 <= cell < len(cell_sources) and bool(IMPROVEMENT_MARK.search(cell_sources[cell]))
