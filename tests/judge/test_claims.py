import nbformat

from grader.evaluation.evaluate import Evaluation
from grader.evaluation.model_config import parse_model_config
from grader.judge.claims import Claim, claim_warnings, find_claims, mention
from grader.judge.facts import ModelFacts
from tests.conftest import keras_config


def notebook(*markdown):
    cells = [nbformat.v4.new_markdown_cell(text) for text in markdown]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), *cells])


def test_claims_are_found_per_model_with_the_precision_written(spec):
    claims = find_claims(
        notebook(
            "Model 2 reaches 98.28% on the test set; model_1 gets 0.976.",
            "Model 2 has the most parameters (437,310) and model 3 is the smallest (51450 params).",
            "Model 3 is the smallest; it reaches 96.8%.",  # no model named in the second clause: no claim
        ),
        spec,
    )
    assert [(c.model, c.kind, c.value, c.cell) for c in claims] == [
        ("model_2", "accuracy", 0.9828, 1),
        ("model_1", "accuracy", 0.976, 1),
        ("model_2", "params", 437310, 2),
        ("model_3", "params", 51450, 2),
    ]
    assert abs(claims[0].tolerance - 0.00005) < 1e-8


def test_contradicted_claims_become_warnings_and_true_ones_do_not():
    architecture = parse_model_config(keras_config("model_2_functional"))
    models = {"model_2": ModelFacts("model_2", "fit", architecture, None, None, (), (), None)}
    claims = [
        Claim("model_2", "accuracy", 0.9828, 0.00005, 4),
        Claim("model_2", "accuracy", 0.984, 0.0005, 4),
        Claim("model_2", "params", 437310, 0, 5),
        Claim("model_2", "params", 400000, 0, 5),
    ]
    warnings = claim_warnings(claims, models, {"model_2": Evaluation(0.9836)}, [])
    assert warnings == [
        "markdown cell 4 says model_2 reaches 98.28%; the grader measured 98.36%.",
        "markdown cell 5 says model_2 has 400,000 parameters; it has 437,310.",
    ]


def test_the_answer_to_did_it_improve_is_checked_against_the_measurement():
    from grader.judge.checks import CheckResult
    from grader.spec.exercise import load_spec
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "reference" / "mnist_mlp_open.toml")
    claims = find_claims(
        notebook("Model 2 improved on model 1.", "Did it improve? No, it did not improve the accuracy."),
        spec,
        improvement_cell=1,
    )
    improved = [claim for claim in claims if claim.kind == "improved"]
    assert [(claim.value, claim.cell) for claim in improved] == [(0.0, 2)]  # the cell before it is not an answer
    measured = CheckResult("model_3.accuracy", "pass", None, {"accuracy": 0.987, "compared": "improved"}, "", 3, 3)
    assert claim_warnings(improved, {}, {}, [measured]) == [
        "markdown cell 2 says the improvement did not improve; the grader measured it improved (see model_3.accuracy)."
    ]


def test_keras_3_total_params_which_count_the_optimizer_are_not_a_wrong_claim():
    architecture = parse_model_config(keras_config("model_2_functional"))
    model = ModelFacts("model_2", "fit", architecture, None, None, (), (), None, optimizer_parameters=437_312)
    claims = [Claim("model_2", "params", 874_622, 0, 3), Claim("model_2", "params", 437_310, 0, 3)]
    assert claim_warnings(claims, {"model_2": model}, {}, []) == []


def test_a_model_is_named_in_the_ways_students_name_it():
    pattern = mention("model_2")
    for text in ("model_2", "Model 2", "model2", "model-2", "the second model", "the Second one"):
        assert pattern.search(text), text
    assert not pattern.search("model_20") and not pattern.search("the first model")
