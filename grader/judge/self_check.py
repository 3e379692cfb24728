"""``grader.check``: a student checks a built model from inside the notebook.

    from grader import check
    check(model_2)        # or check("model_2")

It runs the grader's own architecture, parameter and compile checks against
the exercise's spec, at once: nothing is trained and no process is started.
In Jupyter the result shows as a small table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from grader.errors import SpecError, UntrustedDataError
from grader.evaluation.model_config import parse_model_config
from grader.judge.checks import CheckResult, check_built_model
from grader.judge.facts import CompileFacts, ModelFacts, read_schedule
from grader.protocol.keras_objects import describe_compiled, json_safe, notebook_namespace
from grader.spec.exercise import DEFAULT_SPEC, Spec, load_spec

SPEC_ENV = "GRADER_SPEC"

_templates = Environment(
    loader=PackageLoader("grader.judge", "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)


@dataclass(frozen=True)
class SelfCheck:
    model: str
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(check.status == "pass" for check in self.checks)

    def __str__(self) -> str:
        lines = [f"{self.model}: {'all checks pass' if self.passed else 'some checks fail'}"]
        lines += [f"  {check.status:<5} {check.id:<22} {check.message}" for check in self.checks]
        lines.append("  (training and test accuracy are checked when the notebook is graded)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return _templates.get_template("self_check.html.j2").render(report=self)


def check(model: Any, name: str | None = None, spec: str | Path | None = None) -> SelfCheck:
    """Check ``model`` (a Keras model, or the name of a notebook variable) against the spec."""
    exercise = _load_exercise(spec)
    name, keras_model = _resolve(model, name, exercise)
    try:
        # The same JSON the instrumentation exports when the notebook is graded
        architecture, problem = parse_model_config(json_safe(keras_model.get_config())), None
    except (UntrustedDataError, NotImplementedError) as error:
        architecture, problem = None, str(error) or "it is not a Sequential or Functional model"
    compiled = describe_compiled(keras_model)
    facts = ModelFacts(
        name=name,
        origin="end",
        architecture=architecture,
        problem=problem,
        compile=CompileFacts(
            optimizer=compiled["optimizer"],
            learning_rate=compiled["learning_rate"],
            loss=compiled["loss"],
            schedule=read_schedule(compiled["learning_rate_schedule"]),
        )
        if compiled
        else None,
        fits=(),
        weights=(),
        cell=None,
    )
    return SelfCheck(name, tuple(check_built_model(exercise.model(name), facts)))


def _load_exercise(spec: str | Path | None) -> Spec:
    path = Path(spec or os.environ.get(SPEC_ENV) or DEFAULT_SPEC)
    try:
        return load_spec(path)
    except SpecError as error:
        raise SpecError(
            f"grader.check needs the exercise's spec and could not use {path}: {error} "
            f"Pass check(model, spec='path/to/mnist_mlp.toml') or set {SPEC_ENV}=path/to/mnist_mlp.toml."
        ) from None


def _resolve(model: Any, name: str | None, exercise: Spec) -> tuple[str, Any]:
    """The spec's name for the model, and the model itself."""
    known = exercise.model_names
    if isinstance(model, str):
        name = model
        model = notebook_namespace().get(name)
        if model is None:
            raise NameError(f"there is no variable {name!r} in this notebook; build it first, or pass the model itself")
    if name is None:
        namespace = notebook_namespace()
        name = next((candidate for candidate in known if namespace.get(candidate) is model), None)
    if name not in known:
        raise ValueError(
            f"which model of the exercise is this? The spec names {', '.join(known)}: "
            f"store it in one of those variables, or call check(model, name='{known[0]}')."
        )
    if not hasattr(model, "get_config") or not hasattr(model, "layers"):
        raise TypeError(f"check() needs a Keras model, got {type(model).__name__}")
    return name, model
