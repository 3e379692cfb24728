"""What a notebook's markdown states about its models, against what the grader computed.

The exercise asks how many parameters the models have, which one is better, and whether
the suggested improvement improved anything; a statement that the grader's own numbers
contradict becomes a warning, never a change of score. Pure Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from nbformat import NotebookNode

from grader.evaluation.evaluate import Evaluation
from grader.judge.checks import CheckResult
from grader.judge.deadline import Deadline
from grader.judge.facts import ModelFacts
from grader.spec.exercise import ACCURACY, Spec

# Clauses end at a full stop followed by a space, a semicolon or a line break (not at "98.28").
CLAUSE_END = re.compile(r"(?<=[.!?])\s+|;|\n")
PERCENT = re.compile(r"(\d{1,3}(?:\.(\d+))?)\s*%")
FRACTION = re.compile(r"(?<![\d.])0\.(\d{2,})(?![\d%])")
# Possessive digits: a number is taken whole or not at all (a run of digits is linear, not quadratic)
COUNT = re.compile(r"(?<![\d.,])(\d{1,3}+(?:,\d{3})++|\d{4,}+)(?![\d.,]*\d)")
# "did (not) improve", "no improvement", "is worse": what a student answers to "Did it improve?"
NOT_IMPROVED = re.compile(
    r"\b(?:not|no|n't|never|hardly|barely)\b[^.;!?]{0,30}\b(?:improv|better|increas)|\bworse\b|\bdecreas",
    re.IGNORECASE,
)
IMPROVED = re.compile(r"\bimprov(?:ed|es|ement)\b|\bbetter\b|\bincreased\b", re.IGNORECASE)


@dataclass(frozen=True)
class Claim:
    model: str
    kind: Literal["params", "accuracy", "improved"]
    # a count, an accuracy, or 1.0 / 0.0 for "it improved" / "it did not"
    value: float
    # Half a unit of the last digit written: "98.3%" claims 0.983 +/- 0.0005.
    tolerance: float
    cell: int


ORDINALS = {"1": "first", "2": "second", "3": "third"}


def mention(name: str) -> re.Pattern[str]:
    """``model_2`` also as "model 2", "Model2", "model-2" or "the second model"."""
    words = re.escape(name).replace("_", "[ _-]?")
    ordinal = ORDINALS.get(name.rsplit("_", 1)[-1])
    either = rf"{words}|{ordinal} (?:model|one)" if ordinal else words
    return re.compile(rf"\b(?:{either})\b", re.IGNORECASE)


def find_claims(
    notebook: NotebookNode, spec: Spec, improvement_cell: int | None = None, deadline: Deadline | None = None
) -> list[Claim]:
    """Parameter counts and accuracies stated in markdown, and whether the improvement improved.

    A number belongs to the model named last before it in the same clause; a
    count is a parameter count when its clause speaks of parameters. An answer about the
    improvement is a clause about improving in a markdown cell after the cell that trained it.
    Raises ``OutOfTime`` once ``deadline`` has passed.
    """
    deadline = deadline or Deadline.never()
    mentions = {name: mention(name) for name in spec.model_names}
    improvement = next((model.name for model in spec.models if model.kind == "improvement"), None)
    claims: list[Claim] = []
    for index, cell in enumerate(notebook.cells):
        if cell.get("cell_type") != "markdown":
            continue
        for clause in CLAUSE_END.split(cell.source):
            deadline.check()
            answer = "improv" in clause.lower() and not clause.rstrip().endswith("?")  # the question is no answer
            if improvement and improvement_cell is not None and index > improvement_cell and answer:
                claims.append(Claim(improvement, "improved", 0.0 if NOT_IMPROVED.search(clause) else 1.0, 0.0, index))
            about_params = "param" in clause.lower()
            starts = sorted((m.start(), m.end(), name) for name, p in mentions.items() for m in p.finditer(clause))
            ends = [start for start, _, _ in starts[1:]] + [len(clause)] if starts else []
            for (_, end, name), next_start in zip(starts, ends, strict=True):
                claims.extend(_claims_in(clause[end:next_start], name, index, about_params))
    return claims


def _claims_in(text: str, model: str, cell: int, about_params: bool) -> list[Claim]:
    claims = []
    for match in PERCENT.finditer(text):
        decimals = len(match.group(2) or "")
        value = float(match.group(1)) / 100
        if 0.5 <= value <= 1:
            claims.append(Claim(model, "accuracy", value, 0.5 * 10 ** -(decimals + 2) + 1e-9, cell))
    for match in FRACTION.finditer(text):
        value = float("0." + match.group(1))
        if value >= 0.5:
            claims.append(Claim(model, "accuracy", value, 0.5 * 10 ** -len(match.group(1)) + 1e-9, cell))
    if about_params:
        for match in COUNT.finditer(text):
            claims.append(Claim(model, "params", float(match.group(1).replace(",", "")), 0.0, cell))
    return claims


def claim_warnings(
    claims: list[Claim], models: dict[str, ModelFacts], evaluations: dict[str, Evaluation], checks: list[CheckResult]
) -> list[str]:
    """A warning for each claim that the grader's own figures contradict."""
    compared = {
        check.id.split(".")[0]: check.actual.get("compared")
        for check in checks
        if check.id.endswith(".accuracy") and isinstance(check.actual, dict)
    }
    warnings = []
    for claim in claims:
        facts = models.get(claim.model)
        if claim.kind == "params" and facts and facts.architecture:
            actual = facts.architecture.param_count()
            # Keras 3's summary() counts the optimizer's values into "Total params" once trained.
            summary_total = actual + facts.optimizer_parameters if actual and facts.optimizer_parameters else None
            if actual is not None and claim.value not in (actual, summary_total):
                warnings.append(
                    f"markdown cell {claim.cell} says {claim.model} has {claim.value:,.0f} parameters; "
                    f"it has {actual:,}."
                )
        evaluation = evaluations.get(claim.model)
        # A private test set's measurement is not what the notebook could print
        public = evaluation is not None and evaluation.metric == ACCURACY.key and evaluation.test_set == "public"
        measured = evaluation.test_value if evaluation and public else None
        if claim.kind == "accuracy" and measured is not None:
            if abs(measured - claim.value) > claim.tolerance:
                warnings.append(
                    f"markdown cell {claim.cell} says {claim.model} reaches {claim.value:.2%}; "
                    f"the grader measured {measured:.2%}."
                )
        verdict = compared.get(claim.model)
        if claim.kind == "improved" and verdict in ("improved", "worse", "equal"):
            if (claim.value == 1.0) != (verdict == "improved"):
                said = "improved" if claim.value == 1.0 else "did not improve"
                warnings.append(
                    f"markdown cell {claim.cell} says the improvement {said}; the grader measured it {verdict} "
                    f"(see {claim.model}.accuracy)."
                )
    return warnings
