"""The facts reader treats everything from the kernel as hostile input."""

import json

import numpy as np
import pytest

from grader.judge.facts import DataFingerprints, read_facts
from grader.protocol.fingerprints import row_fingerprints
from tests.conftest import keras_config

NAMES = ["model_1", "model_2", "model_3"]


@pytest.fixture
def fingerprints():
    rng = np.random.default_rng(0)
    images = rng.random((50, 8, 8)) > 0.5
    return DataFingerprints(row_fingerprints(images[:40], (8, 8)), row_fingerprints(images[40:], (8, 8)))


def write_facts(facts_dir, models, **extra):
    facts_dir.mkdir(exist_ok=True)
    manifest = {
        "format": 1,
        "environment": {"tensorflow": "2.x"},
        "models": models,
        **extra,
    }
    (facts_dir / "manifest.json").write_text(json.dumps(manifest))


def snapshot(facts_dir, folder="snapshot-1-fit", config="model_1_sequential_add"):
    (facts_dir / folder).mkdir(parents=True)
    (facts_dir / folder / "config.json").write_text(json.dumps(keras_config(config)))
    return folder


def fit_record(**overrides):
    return {
        "batch_size": 128,
        "epochs": 30,
        "initial_epoch": 0,
        "validation_split": 0.0,
        "x_shape": [12, 6],
        "x_fingerprints": None,
        "history": {"val_accuracy": [0.9]},
        "epoch_times": [1.0],
        "completed": True,
        **overrides,
    }


def test_a_well_formed_record_is_read(tmp_path, fingerprints):
    folder = snapshot(tmp_path)
    marks = np.concatenate([fingerprints.train[:8], fingerprints.test[:4]])
    np.save(tmp_path / "fit-0-x.npy", marks)
    write_facts(
        tmp_path,
        {
            "model_1": {
                "snapshot": folder,
                "origin": "fit",
                "cell_position": 4,
                "compile": {"optimizer": "RMSprop", "learning_rate": 0.001, "loss": "mse"},
                "fits": [fit_record(x_fingerprints="fit-0-x.npy")],
            }
        },
    )
    facts = read_facts(tmp_path, NAMES, fingerprints, {4: 7})
    model = facts.models["model_1"]
    assert model.cell == 7 and model.origin == "fit"
    assert model.architecture.param_count() == 55_050
    assert (model.fits[0].rows, model.fits[0].test_rows) == (12, 4)
    assert not facts.warnings


def test_what_keras_drew_and_weights_from_elsewhere_are_read_and_bounded(tmp_path, fingerprints):
    folder = snapshot(tmp_path)
    drawn = np.concatenate([fingerprints.train[:20], fingerprints.test[:6]])  # distinct, as the kernel saves them
    np.save(tmp_path / "drawn-1.npy", drawn)
    change = {"what": "set_weights on the model", "cell_position": 4, "when": "during fit 1"}
    write_facts(
        tmp_path,
        {
            "model_1": {
                "snapshot": folder,
                "fits": [fit_record()],
                "drawn": {"rows": 1000, "fingerprinted": 32, "fingerprints": "drawn-1.npy"},
                "weight_events": [change, "not an event"],
                "weight_events_after": [{**change, "when": "after fit 1", "what": "x" * 5000}] * 30,
            }
        },
    )
    facts = read_facts(tmp_path, NAMES, fingerprints, {4: 7})
    model = facts.models["model_1"]
    assert (model.drawn.rows, model.drawn.fingerprinted, model.drawn.test_rows) == (1000, 32, 6)
    assert model.test_rows == 6
    assert [change.describe() for change in model.weight_changes] == [
        "set_weights on the model (in cell 7, during fit 1)"
    ]
    assert len(model.weight_changes_after) == 21 and model.weight_changes_after[-1].what == "and 10 more changes"
    assert max(len(change.what) for change in model.weight_changes_after) < 300
    (warning,) = [w for w in facts.warnings if "replaced after it was trained" in w]
    assert warning.startswith("model_1's weights were replaced after it was trained: x")


def test_no_manifest_means_the_instrumentation_never_started(tmp_path, fingerprints):
    facts = read_facts(tmp_path, NAMES, fingerprints, {})
    assert facts.models == {} and "did not start" in facts.warnings[0]


def test_an_unparsable_manifest_is_a_warning_not_a_crash(tmp_path, fingerprints):
    (tmp_path / "manifest.json").write_text("{" * 10)
    assert "not valid JSON" in read_facts(tmp_path, NAMES, fingerprints, {}).warnings[0]


@pytest.mark.parametrize("snapshot_name", ["../../etc", "/etc", ".hidden", 42, None])
def test_paths_outside_the_facts_folder_are_refused(tmp_path, fingerprints, snapshot_name):
    write_facts(tmp_path, {"model_1": {"snapshot": snapshot_name, "fits": []}})
    facts = read_facts(tmp_path, NAMES, fingerprints, {})
    assert "model_1" not in facts.models
    assert "invalid file name" in facts.warnings[0]


def test_a_symlinked_config_is_refused(tmp_path, fingerprints):
    folder = tmp_path / "snapshot-1-fit"
    folder.mkdir()
    (folder / "config.json").symlink_to("/etc/passwd")
    write_facts(tmp_path, {"model_1": {"snapshot": folder.name, "fits": []}})
    model = read_facts(tmp_path, NAMES, fingerprints, {}).models["model_1"]
    assert model.architecture is None and "symbolic link" in model.problem


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"epochs": "many"}, "epochs is 'many', not a int"),
        ({"batch_size": 12.5}, "batch_size is 12.5"),
        ({"epoch_times": [float("inf")]}, "not finite"),
        ({"x_fingerprints": "fit-0-x.npy"}, "have shape \\(3,\\), not \\(12,\\)"),
    ],
)
def test_malformed_fit_records_are_reported(tmp_path, fingerprints, override, message):
    folder = snapshot(tmp_path)
    np.save(tmp_path / "fit-0-x.npy", fingerprints.train[:3])
    write_facts(tmp_path, {"model_1": {"snapshot": folder, "fits": [fit_record(**override)]}})
    facts = read_facts(tmp_path, NAMES, fingerprints, {})
    assert "model_1" not in facts.models
    assert any(__import__("re").search(message, w) for w in facts.warnings), facts.warnings


def test_a_pickle_in_place_of_fingerprints_is_not_loaded(tmp_path, fingerprints):
    folder = snapshot(tmp_path)
    np.save(tmp_path / "fit-0-x.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    write_facts(tmp_path, {"model_1": {"snapshot": folder, "fits": [fit_record(x_fingerprints="fit-0-x.npy")]}})
    facts = read_facts(tmp_path, NAMES, fingerprints, {})
    assert "python objects are refused" in facts.warnings[0]


def test_a_model_changed_after_training_is_graded_as_trained_with_a_warning(tmp_path, fingerprints):
    folder = snapshot(tmp_path)
    changed = keras_config("model_1_sequential_add")
    changed["layers"].append({"class_name": "Dense", "config": {"units": 5, "activation": "relu"}})
    write_facts(
        tmp_path,
        {"model_1": {"snapshot": folder, "origin": "fit", "cell_position": 5, "fits": [fit_record()]}},
        final_configs={"model_1": changed},
    )
    facts = read_facts(tmp_path, NAMES, fingerprints, {5: 11})
    assert facts.models["model_1"].architecture.param_count() == 55_050
    assert facts.warnings == ("model_1 was changed after it was trained in cell 11; it is graded as it was trained.",)


def test_an_unchanged_model_gives_no_warning(tmp_path, fingerprints):
    folder = snapshot(tmp_path)
    write_facts(
        tmp_path,
        {"model_1": {"snapshot": folder, "origin": "fit", "cell_position": 5, "fits": [fit_record()]}},
        final_configs={"model_1": keras_config("model_1_sequential_add")},
    )
    assert read_facts(tmp_path, NAMES, fingerprints, {}).warnings == ()


def test_a_failed_export_is_reported(tmp_path, fingerprints):
    write_facts(tmp_path, {}, export_errors=["model_2: ValueError: weights too large"])
    assert read_facts(tmp_path, NAMES, fingerprints, {}).warnings == (
        "a model could not be exported: model_2: ValueError: weights too large",
    )


def test_a_fifo_in_place_of_a_file_never_blocks_the_reader(tmp_path, fingerprints):
    import os

    folder = snapshot(tmp_path)
    os.remove(tmp_path / folder / "config.json")
    os.mkfifo(tmp_path / folder / "config.json")
    write_facts(tmp_path, {"model_1": {"snapshot": folder, "fits": [fit_record()]}})
    model = read_facts(tmp_path, NAMES, fingerprints, {}).models["model_1"]
    assert model.architecture is None and "not a regular file" in model.problem
    os.remove(tmp_path / "manifest.json")
    os.mkfifo(tmp_path / "manifest.json")
    assert "not a regular file" in read_facts(tmp_path, NAMES, fingerprints, {}).warnings[0]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
        ('{"models": {"model_1": {"compile": {"learning_rate": 1' + "0" * 400 + "}}}}", "an integer of 401 digits"),
    ],
)
def test_a_manifest_built_to_break_the_parser_is_a_warning(tmp_path, fingerprints, manifest, message):
    (tmp_path / "manifest.json").write_text(manifest)
    facts = read_facts(tmp_path, NAMES, fingerprints, {})
    assert facts.models == {} and message in facts.warnings[0]


def test_odd_values_are_kept_as_gaps_and_every_string_and_list_is_cut(tmp_path, fingerprints):
    folder = snapshot(tmp_path)
    history = {"loss": [0.5, float("nan"), 1e308, 0.2], "accuracy": [0.9] * 5000}
    write_facts(
        tmp_path,
        {"model_1": {"snapshot": folder, "fits": [fit_record(history=history)]}},
        environment={"devices": None, "tensorflow": "x" * 10_000, "keras": ["a"] * 1000},
        export_errors=["e" * 100_000] * 50,
    )
    facts = read_facts(tmp_path, NAMES, fingerprints, {})
    model = facts.models["model_1"]  # a NaN costs the model no check: its record is kept
    assert model.fits[0].history["loss"] == [0.5, None, None, 0.2]
    assert len(model.fits[0].history["accuracy"]) == 1000
    assert any("not finite numbers (loss at epoch 2: nan; loss at epoch 3: 1e+308)" in w for w in facts.warnings)
    assert any("has 5,000 values; the first 1000 are kept" in w for w in facts.warnings)
    assert "devices" not in facts.environment  # None is no list of devices
    assert len(facts.environment["tensorflow"]) < 200 and len(facts.environment["keras"]) == 20
    assert max(len(w) for w in facts.warnings) < 500
    assert any("30 more not listed" in w for w in facts.warnings)
