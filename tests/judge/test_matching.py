"""Which model of a notebook is which model of the spec: by name, else by what it is."""

from pathlib import Path

import pytest

from grader.evaluation.model_config import parse_model_config
from grader.judge.facts import FitFacts, KernelFacts, ModelFacts
from grader.judge.matching import assign_models
from grader.spec.exercise import load_spec
from tests.conftest import ROOT, keras_config

OPEN_SPEC = ROOT / "reference" / "mnist_mlp_open.toml"


def trained(name: str, config: str, cell: int, epochs: int = 30) -> ModelFacts:
    fit = FitFacts(128, epochs, 0, 0.0, 60000, 0, {}, [1.0] * epochs, True, cell=cell)
    architecture = parse_model_config(keras_config(config))
    return ModelFacts(name, "fit", architecture, None, None, (fit,), (), cell, variables=(name,))


@pytest.fixture(scope="module")
def open_spec():
    return load_spec(OPEN_SPEC)


def test_a_model_missing_under_its_name_is_found_by_its_layers(open_spec):
    model_1 = trained("model_1", "model_1_sequential_add", 3)
    facts = KernelFacts({"model_1": model_1}, {}, (), (trained("m2", "model_2_functional", 6, 20),))
    assigned, notes = assign_models(open_spec, facts, [""] * 10)
    assert assigned["model_2"].name == "model_2" and assigned["model_2"].variables == ("m2",)
    assert notes == ["no model was left in a variable called model_2; the model in variable m2 (trained in cell 6) "
                     "is the most like it and is graded as model_2"]  # fmt: skip
    assert "model_3" not in assigned  # nothing left for the improvement


def test_a_model_unlike_the_missing_one_is_not_taken_for_it(open_spec):
    facts = KernelFacts({}, {}, (), (trained("mlp", "model_3_activation_layers", 9),))
    assigned, _ = assign_models(open_spec, facts, [""] * 12)
    assert "model_1" not in assigned and "model_2" not in assigned
    assert assigned["model_3"].variables == ("mlp",)  # an improvement instead


def test_the_improvement_is_the_marked_one_else_the_named_one_else_the_last(open_spec):
    first, second = trained("model_21", "model_3_activation_layers", 7), trained("model_4", "flatten_input", 8)
    sources = [""] * 10
    facts = KernelFacts({}, {}, (), (first, second))
    assigned, notes = assign_models(open_spec, facts, sources)
    assert assigned["model_3"].variables == ("model_4",)  # the last trained
    assert "besides the improvement graded (the last one trained)" in notes[-1] and "model_21" in notes[-1]
    sources[7] = "# Improvement: a smaller model\nmodel_21.fit(...)"
    assigned, notes = assign_models(open_spec, facts, sources)
    assert assigned["model_3"].variables == ("model_21",)
    named = trained("model_3", "model_3_activation_layers", 5)
    assigned, _ = assign_models(open_spec, KernelFacts({"model_3": named}, {}, (), (second,)), [""] * 10)
    assert assigned["model_3"] is not None and assigned["model_3"].variables == ("model_3",)


def test_the_fixed_spec_has_no_improvement_to_look_for():
    spec = load_spec(Path(ROOT / "reference" / "mnist_mlp.toml"))
    facts = KernelFacts({}, {}, (), (trained("mlp", "model_2_functional", 9, 20),))
    assigned, _ = assign_models(spec, facts, [""] * 10)
    assert list(assigned) == ["model_2"]
