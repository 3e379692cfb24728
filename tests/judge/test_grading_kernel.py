"""End-to-end grading in real Jupyter kernels with TensorFlow (tens of seconds each)."""

import json
import os
import re
import subprocess
import sys

import pytest

from grader.judge.pipeline import GradingOptions, grade_notebook, prepare_context
from grader.run.backends import choose_backend
from tests.conftest import FIXTURES, ROOT, assert_follows_results_schema

pytestmark = pytest.mark.kernel
NOTEBOOKS = FIXTURES / "notebooks"
GOLDEN_RESULTS = FIXTURES.parent / "golden" / "samples_quick_results.json"


@pytest.fixture(scope="module")
def quick_context(mnist_path):
    return prepare_context(GradingOptions(quick=True, timeout=120), data_path=mnist_path)


def verdicts(result):
    return {check.id: check.status for check in result.checks}


def test_check_gives_the_reference_solution_full_marks_in_quick_mode(mnist_path, spec):
    completed = subprocess.run(
        [sys.executable, "-m", "grader", "check", str(spec.solution), "--quick", "--data", str(mnist_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Score: 15 / 15" in completed.stdout


def test_grade_the_samples_folder(mnist_path, graded_samples):
    out = graded_samples
    document = json.loads((out / "results.json").read_text())
    assert_follows_results_schema(document)
    results = {s["id"]: s for s in document["submissions"]}
    assert set(results) == {"correct_other_spellings", "wrong_architecture", "crashes", "script_in_markdown"}
    assert all(s["status"] == "graded" for s in results.values())
    status = {sid: {c["id"]: c["status"] for c in s["checks"]} for sid, s in results.items()}

    assert set(status["correct_other_spellings"].values()) == {"pass", "skipped"}
    assert results["correct_other_spellings"]["score"] == 15

    wrong = status["wrong_architecture"]
    assert (wrong["model_2.architecture"], wrong["model_2.params"]) == ("fail", "fail")
    assert all(
        v in ("pass", "skipped") for k, v in wrong.items() if k not in ("model_2.architecture", "model_2.params")
    )
    message = next(c["message"] for c in results["wrong_architecture"]["checks"] if c["id"] == "model_2.architecture")
    assert "layer 1 should be Dense(400, relu) but is Dense(512, relu)" in message
    assert "layer 2 should be Dropout(0.4) but is Dropout(0.5)" in message

    crashed = status["crashes"]
    assert {crashed[f"model_2.{k}"] for k in ("architecture", "params", "optimizer", "training")} == {"error"}
    assert crashed["model_2.accuracy"] == "skipped"  # as for every quick grade
    assert crashed["model_1.architecture"] == crashed["model_3.training"] == "pass"
    assert "NameError: name 'Dens' is not defined" in results["crashes"]["warnings"][0]
    assert (results["crashes"]["score"], results["crashes"]["max_score"]) == (10, 15)

    assert len(results["correct_other_spellings"]["models"]["model_2"]["epoch_times"]) == 1  # one quick epoch, timed
    # The markdown copied from the model solution no longer matches this model_2.
    assert (
        "markdown cell 17 says model_2 has 437,310 parameters; it has 558,830."
        in results["wrong_architecture"]["warnings"]
    )

    # A student's `grader check` (one notebook, in process) gives exactly the verdicts of the
    # instructor's `grade` (here with two worker processes).
    checked = subprocess.run(
        [sys.executable, "-m", "grader", "check", str(ROOT / "submissions" / "wrong_architecture.ipynb"), "--json",
         "--data", str(mnist_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert checked.returncode == 1
    assert json.loads(checked.stdout)["checks"] == results["wrong_architecture"]["checks"]

    gradebook = (out / "gradebook.csv").read_text().splitlines()
    # The written answers are not graded yet (grader review): the total stays blank, out of 15 + 9.
    assert len(gradebook) == 6 and "correct_other_spellings,,,correct_other_spellings,," in gradebook
    assert gradebook[1].endswith(",24")
    assert (out / "index.html").is_file() and len(list((out / "submissions").glob("*.html"))) == 4
    assert len(list((out / "notebooks").glob("*.html"))) == 4


def verdict_fields(run: dict) -> dict:
    """What a grade is, out of ``results.json``: no timings, paths, histories or machine details."""
    fields = ("id", "status", "score", "max_score", "checks", "warnings", "error")
    return {
        submission["id"]: {
            **{field: submission[field] for field in fields},
            "models": {name: model["architecture"] for name, model in submission["models"].items()},
        }
        for submission in run["submissions"]
    }


def test_the_samples_grade_as_their_golden_results(graded_samples, update_golden):
    """The verdicts of the samples stay what they were; after an intended change, rerun with
    --update-golden and review the diff."""
    golden = GOLDEN_RESULTS
    graded = verdict_fields(json.loads((graded_samples / "results.json").read_text()))
    if update_golden:
        golden.write_text(json.dumps(graded, indent=1, sort_keys=True) + "\n")
    assert graded == json.loads(golden.read_text())


def test_a_hanging_notebook_times_out_and_keeps_what_it_trained(quick_context):
    context = prepare_context(GradingOptions(quick=True, timeout=20), data_path=quick_context.data_path)
    result = grade_notebook(NOTEBOOKS / "timeout_after_model_1.ipynb", context).result
    assert result.status == "timeout"
    assert "time limit of 20 s" in result.error
    checks = verdicts(result)
    assert checks["model_1.architecture"] == checks["model_1.training"] == "pass"
    assert checks["model_2.architecture"] == "error"


def test_a_dead_kernel_is_an_error_and_keeps_what_it_trained(quick_context):
    result = grade_notebook(NOTEBOOKS / "dies_after_model_1.ipynb", quick_context).result
    assert result.status == "error"
    assert "kernel died while running cell 2" in result.error
    checks = verdicts(result)
    assert checks["model_1.architecture"] == checks["model_1.optimizer"] == "pass"
    assert checks["model_3.params"] == "error"


def test_full_mode_measures_the_real_accuracy_whatever_the_notebook_claims(mnist_path):
    context = prepare_context(GradingOptions(quick=False, timeout=240), FIXTURES / "tiny_spec.toml", mnist_path)
    result = grade_notebook(NOTEBOOKS / "fakes_its_accuracy.ipynb", context).result
    assert result.status == "graded", result.error
    accuracy = next(check for check in result.checks if check.id == "tiny.accuracy")
    assert accuracy.status == "pass", accuracy.message
    assert 0.85 < accuracy.actual < 0.99  # the notebook claims 1.0 four ways
    assert result.score == result.max_score == 5
    (doctored,) = [w for w in result.warnings if "history" in w]
    assert doctored.startswith("tiny's training history claims a final validation accuracy of 1.0000 on the test set")


@pytest.mark.slow
def test_full_grade_of_the_model_solution_passes_every_check(mnist_path, spec):
    context = prepare_context(GradingOptions(quick=False), data_path=mnist_path)
    result = grade_notebook(spec.solution, context).result
    assert result.status == "graded", result.error
    failing = {check.id: check.message for check in result.checks if check.status != "pass"}
    assert not failing
    assert result.score == result.max_score == sum(sum(m.points.values()) for m in spec.models)
    assert {name: len(m.epoch_times) for name, m in result.models.items()} == {m.name: m.epochs for m in spec.models}
    assert all(len(m.history["val_accuracy"]) == len(m.epoch_times) for m in result.models.values())


LENET_SPEC = ROOT / "reference" / "mnist_lenet.toml"


def test_the_lenet_solution_grades_to_full_marks_in_quick_mode(mnist_path):
    context = prepare_context(GradingOptions(quick=True), LENET_SPEC, mnist_path)
    result = grade_notebook(context.spec.solution, context).result
    assert (result.status, result.score, result.max_score) == ("graded", 5, 5), result.checks
    architecture = result.models["lenet"].architecture
    assert architecture.input_shape == (32, 32, 1) and architecture.param_count() == 61706


@pytest.mark.slow
def test_full_grade_of_the_lenet_solution_passes_every_check(mnist_path):
    """A second exercise, of convolutions, rebuilt by Keras' own deserialisation and fed the
    test images padded to 32x32 as the notebook padded its own (10 epochs: minutes)."""
    context = prepare_context(GradingOptions(quick=False), LENET_SPEC, mnist_path)
    result = grade_notebook(context.spec.solution, context).result
    assert result.status == "graded", result.error
    assert (result.score, result.max_score) == (8, 8), [(c.id, c.message) for c in result.checks]
    assert result.models["lenet"].preprocessing == "x / 255, padded by 2, shaped (32, 32, 1)"


def test_the_evaluator_refuses_bad_weights_blames_a_model_it_fails_on_and_only_its_own_faults_are_the_graders(
    mnist_path, tmp_path, monkeypatch
):
    import numpy as np
    import psutil

    from grader.errors import GraderFault
    from grader.evaluation.evaluate import _EVALUATORS, ExportedModel, evaluate_models
    from grader.evaluation.model_config import parse_model_config
    from grader.judge.pipeline import evaluator_recipe
    from tests.conftest import keras_config

    recipe = evaluator_recipe(prepare_context(GradingOptions(quick=False), data_path=mnist_path))
    shapes = parse_model_config(keras_config("model_1_sequential_add")).weight_shapes()
    right = [tmp_path / f"w{i:03d}.npy" for i in range(len(shapes))]
    for path, shape in zip(right, shapes, strict=True):
        np.save(path, np.zeros(shape, "float32"))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 3), "float32"))
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"x": 1}], dtype=object), allow_pickle=True)

    config = tmp_path / "config.json"
    config.write_text(json.dumps(keras_config("model_1_sequential_add")))

    def facts(name, weights):
        return ExportedModel(name, config, tuple(weights))

    answers, _ = evaluate_models(
        [facts("zeros", right), facts("wrong", [wrong, *right[1:]]), facts("pickled", [pickled, *right[1:]])], recipe
    )
    assert answers["zeros"].test_value is not None and answers["zeros"].error is None
    assert answers["zeros"].metric == "accuracy"  # named by the evaluator, checked by the grader
    assert "has shape (3, 3)" in answers["wrong"].error
    assert "python objects are refused" in answers["pickled"].error  # never unpickled

    evaluate_models([facts("zeros", right)], recipe)
    (evaluator,) = [evaluator for evaluator in _EVALUATORS.values() if evaluator.recipe == recipe]
    kept = evaluator.process.pid
    # It runs in its sandbox, as a uid of its own where the grader may change uid.
    measuring = [
        p for p in psutil.Process(kept).children(recursive=True) if "grader.evaluation.evaluator" in p.cmdline()
    ]
    assert measuring, "no evaluator process below the sandbox"
    if recipe.isolation.uid_change and os.geteuid() == 0:
        assert {process.uids().real for process in measuring} != {0}
    right[1].unlink()  # listed when the facts were read, gone now: the grader's problem, not the student's
    with pytest.raises(GraderFault, match=r"could not read what zeros's kernel exported: .*No such file"):
        evaluate_models([facts("zeros", right)], recipe)
    np.save(right[1], np.zeros(shapes[1], "float32"))
    # One evaluator process answered all of it: Keras and the data set were loaded once.
    assert [e.process.pid for e in _EVALUATORS.values() if e.recipe == recipe] == [kept]

    # An evaluator that dies on a model, while a fresh one measures the exercise's own model:
    # the model's fault, its accuracy an error saying why
    monkeypatch.setenv("GRADER_INJECT_FAULT", "evaluator-model")
    answers, printed = evaluate_models([facts("zeros", right)], recipe)
    assert answers["zeros"].test_value is None
    assert "the grader's evaluator failed (it exited with 1: GRADER_INJECT_FAULT" in answers["zeros"].error
    assert "measures the exercise's own model" in answers["zeros"].error
    assert "the evaluator crashes on a model" in printed  # what it said, for the instructor
    # An evaluator that cannot measure the exercise's own model: the grader's
    monkeypatch.setenv("GRADER_INJECT_FAULT", "evaluator")
    with pytest.raises(GraderFault, match=r"evaluator failed \(it exited with 1: .*\) as it started") as fault:
        evaluate_models([facts("zeros", right)], recipe)
    assert "GRADER_INJECT_FAULT: the evaluator crashes" in fault.value.logs["evaluator.log"]


def test_a_model_changed_after_training_is_graded_as_trained(quick_context):
    result = grade_notebook(NOTEBOOKS / "changes_model_after_training.ipynb", quick_context).result
    checks = verdicts(result)
    assert checks["model_1.architecture"] == checks["model_1.params"] == "pass"
    assert "model_1 was changed after it was trained in cell 1; it is graded as it was trained." in result.warnings


def test_a_keras2_notebook_runs_and_each_adapted_spelling_is_a_warning(quick_context):
    result = grade_notebook(NOTEBOOKS / "keras2_spellings.ipynb", quick_context).result
    assert result.status == "graded"
    assert (result.score, result.max_score) == (15, 15)
    legacy = {w.removeprefix("legacy Keras 2 spelling adapted: ") for w in result.warnings if w.startswith("legacy")}
    assert legacy == {
        "keras.utils.np_utils.to_categorical is Keras 2: write keras.utils.to_categorical",
        "RMSprop(lr=...) is Keras 2: write RMSprop(learning_rate=...)",
        "fit(nb_epoch=...) is Keras 2: write fit(epochs=...)",
        "history.history['acc'] is Keras 2: write history.history['accuracy']",
        "history.history['val_acc'] is Keras 2: write history.history['val_accuracy']",
        "SGD(lr=...) is Keras 2: write SGD(learning_rate=...)",
    }
    # What cannot be adapted stays a failure, with Keras' own error.
    assert (
        "cell 6 raised ValueError: Unrecognized keyword arguments passed to Dense: {'init': 'uniform'}"
        in (result.warnings[0])
    )


@pytest.mark.slow  # 24 s: kept out of the default run for its time on 2 cores
def test_acceleration_trains_exactly_the_same_weights(mnist_path):
    """With a fixed seed on the CPU, steps_per_execution changes the speed, not the computation."""
    import numpy as np

    from grader.ingest.notebook import load_submission
    from grader.judge.pipeline import instrumented_run

    submission = load_submission(NOTEBOOKS / "seeded_training.ipynb")
    trained = {}
    for accelerate in (False, True):
        options = GradingOptions(quick=False, timeout=300, accelerate=accelerate)
        context = prepare_context(options, FIXTURES / "tiny_spec.toml", mnist_path)
        with instrumented_run(submission, context) as (execution, facts, sandbox):
            assert execution.outcome == "completed" and not execution.cell_errors
            model = facts.models["tiny"]
            manifest = json.loads((sandbox.facts_dir / "manifest.json").read_text())
            expected = context.backend.steps_per_execution if accelerate else 1
            assert manifest["models"]["tiny"]["compile"]["steps_per_execution"] == expected
            trained[accelerate] = ([np.load(path) for path in model.weights], model.fits[0].history)
            # Every epoch and every batch of each ran: 2 epochs of 60,000 images in batches of 128.
            assert (model.fits[0].epochs_completed, model.fits[0].steps) == (2, 2 * 469) and model.fits[0].finished
    (plain_weights, plain_history), (fast_weights, fast_history) = trained[False], trained[True]
    assert len(plain_weights) == 4
    assert all(np.array_equal(a, b) for a, b in zip(plain_weights, fast_weights, strict=True))
    assert plain_history == fast_history and len(plain_history["val_accuracy"]) == 2


@pytest.mark.slow  # a measuring tool, not the grading path: keeps the default run under 15 minutes
def test_bench_times_plain_and_instrumented_epochs(mnist_path):
    completed = subprocess.run(
        [sys.executable, "-m", "grader", "bench", "--epochs", "2", "--model", "model_1", "--json", "--data",
         str(mnist_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    # TensorFlow's and absl's own lines (I0000 ..., "WARNING: All log messages before absl::...") stay off the terminal.
    assert not re.search(r"^([IWE]0000|WARNING: All log messages)", completed.stderr, re.MULTILINE), completed.stderr
    report = json.loads(completed.stdout)
    machine = report["machine"]
    assert report["epochs"] == 2 and machine["backend"] == choose_backend().name and machine[machine["backend"]]
    (model,) = report["models"]
    assert model["model"] == "model_1"
    for way in ("plain", "instrumented"):
        assert 0 < model[way]["min"] <= model[way]["median"] <= model[way]["max"]
    assert model["speed_up"] == pytest.approx(model["plain"]["median"] / model["instrumented"]["median"], rel=1e-2)


@pytest.mark.slow  # a measuring tool, not the grading path: keeps the default run under 15 minutes
def test_the_batch_bench_grades_copies_and_reports_grades_per_hour_and_overhead(mnist_path):
    completed = subprocess.run(
        [sys.executable, "-m", "grader", "bench", "--batch", "2", "--quick", "--jobs", "2", "--json", "--data",
         str(mnist_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert (report["notebooks"], report["graded"], report["jobs"], report["mode"]) == (2, 2, 2, "quick")
    assert report["backend"] == f"{choose_backend().name}/cpu"
    assert report["grades_per_hour"] == pytest.approx(2 * 3600 / report["wall_seconds"], rel=1e-2)
    assert sorted(report["epoch_seconds"]) == ["model_1", "model_2", "model_3"]
    assert 0 < report["training_seconds"] < report["worker_seconds"] == pytest.approx(report["wall_seconds"], rel=1e-2)
    assert report["overhead_seconds"] == pytest.approx(report["worker_seconds"] - report["training_seconds"], abs=0.02)


def test_an_improvement_is_judged_on_its_measured_accuracy_with_the_notebooks_own_preprocessing(mnist_path):
    """Full mode: the fixed model trained on standardised images, the improvement on raw pixels
    with a Rescaling layer; the grader feeds each the test images the same way."""
    context = prepare_context(GradingOptions(quick=False, timeout=240), FIXTURES / "tiny_open_spec.toml", mnist_path)
    result = grade_notebook(NOTEBOOKS / "improvement_on_other_inputs.ipynb", context).result
    checks = {check.id: check for check in result.checks}
    assert result.score == result.max_score == 10, [(c.id, c.message) for c in result.checks]
    assert result.models["tiny"].preprocessing.startswith("(x - 33.3")  # standardised, derived
    assert result.models["better"].preprocessing.startswith("x, shaped (784,)")  # raw, rescaled by the model
    assert result.models["better"].variable == "mine"
    accuracy = checks["better.accuracy"]
    assert accuracy.actual["accuracy"] > 0.9 and accuracy.actual["compared"] == "improved"
    assert "better than tiny: tiny's 2 reference runs reach 0.9000 to 0.9100" in accuracy.message
    assert any("says the improvement did not improve; the grader measured it improved" in w for w in result.warnings)
