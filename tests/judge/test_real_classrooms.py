"""Notebooks with the traits of real student notebooks (``tests/fixtures/corpus``, written
from the traits of two dozen public notebooks of this exercise), graded in one quick batch
with the open spec: improvements under any name, renamed models, Keras 2 and Colab
spellings, datasets and sparse labels, unfinished work, course variants, a huge layer."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from grader.cli import cli
from tests.conftest import FIXTURES, ROOT
from tests.judge.test_grading_kernel import verdict_fields

pytestmark = pytest.mark.kernel
CORPUS = FIXTURES / "corpus"
GOLDEN = FIXTURES.parent / "golden" / "corpus_quick_results.json"
OPEN_SPEC = ROOT / "reference" / "mnist_mlp_open.toml"


@pytest.fixture(scope="module")
def corpus(mnist_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    arguments = ["grade", str(CORPUS), "--out", str(out), "--quick", "--jobs", "2", "--spec", str(OPEN_SPEC),
                 "--data", str(mnist_path)]  # fmt: skip
    outcome = CliRunner().invoke(cli, arguments)
    assert outcome.exit_code == 0, outcome.output
    run = json.loads((out / "results.json").read_text())
    return {"run": run, "results": {r["id"]: r for r in run["submissions"]}, "out": out}


def statuses(result: dict) -> dict[str, str]:
    return {check["id"]: check["status"] for check in result["checks"]}


def test_the_corpus_grades_as_its_golden_results(corpus, update_golden):
    graded = verdict_fields(corpus["run"])
    if update_golden:
        GOLDEN.write_text(json.dumps(graded, indent=1, sort_keys=True) + "\n")
    assert graded == json.loads(GOLDEN.read_text())


def test_improvements_are_found_under_any_name_and_the_marked_one_is_graded(corpus):
    results = corpus["results"]
    mlp = results["improvement_called_mlp"]
    assert mlp["score"] == 15 and mlp["models"]["model_3"]["variable"] == "mlp"
    assert "the model in variable mlp (trained in cell 8) is graded as the improvement, model_3" in mlp["warnings"]
    marked = results["improvement_lenet_marked_among_two"]
    assert marked["models"]["model_3"]["variable"] == "model_4"
    assert marked["models"]["model_3"]["architecture"]["layers"][0]["type"] == "Conv2D"
    assert any("besides the improvement graded (the one marked # improvement)" in w for w in marked["warnings"])
    assert statuses(results["no_improvement"])["model_3.architecture"] == "error"
    assert results["no_improvement"]["score"] == 10  # model_1 and model_2, no model_3 points


def test_a_renamed_model_is_found_by_what_it_is(corpus):
    renamed = corpus["results"]["renamed_model_2"]
    assert {statuses(renamed)[f"model_2.{kind}"] for kind in ("architecture", "params", "training")} == {"pass"}
    assert any("the model in variable model2 (trained in cell 6) is the most like it" in w for w in renamed["warnings"])


def test_what_real_notebooks_write_runs(corpus):
    results = corpus["results"]
    old = results["keras2_and_colab"]
    assert {statuses(old)[f"model_1.{kind}"] for kind in ("architecture", "optimizer", "training")} == {"pass"}
    warnings = " ".join(old["warnings"])
    assert "%tensorflow_version is Colab's" in warnings and "keras.layers.core is Keras 2" in warnings
    assert "RMSprop(lr=...) is Keras 2" in warnings and "fit(nb_epoch=...) is Keras 2" in warnings
    modern = results["datasets_sparse_labels_early_stopping"]
    assert modern["score"] == 15  # a tf.data dataset, tensors as labels, sparse labels, EarlyStopping
    training = next(check for check in modern["checks"] if check["id"] == "model_1.training")
    assert training["actual"]["batch_size"] == 128 and training["actual"]["train_samples"] == 60000
    rate = results["learning_rate_and_total_params"]
    optimizer = next(check for check in rate["checks"] if check["id"] == "model_1.optimizer")
    assert "the learning rate is 0.0015, expected 0.001" in optimizer["message"]
    assert not any("874,622" in w for w in rate["warnings"])  # Keras 3's "Total params" counts the optimizer's


def test_unfinished_work_and_course_variants_get_their_verdicts_not_a_crash(corpus):
    results = corpus["results"]
    unfinished = results["unfinished_handout"]
    assert unfinished["status"] == "graded" and any("SyntaxError" in w for w in unfinished["warnings"])
    variant = results["course_variant_and_huge_layer"]
    assert statuses(variant)["model_1.architecture"] == "fail" and statuses(variant)["model_2.params"] == "fail"
    params = next(check for check in variant["checks"] if check["id"] == "model_2.params")
    assert params["actual"] == 79_500_010  # 784 x 100,000 + 100,000 + 100,000 x 10 + 10


def test_the_class_page_has_a_leaderboard_and_each_page_its_standing(corpus):
    index = (corpus["out"] / "index.html").read_text()
    assert 'id="leaderboard"' in index and "model_4" in index and ">mlp<" in index
    page = (corpus["out"] / "submissions" / "improvement_called_mlp.html").read_text()
    assert "This notebook's improvement ranks <strong>" in page and " of 3</strong>" in page
