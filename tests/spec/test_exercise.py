import json
from pathlib import Path

import pytest

from grader.errors import SpecError
from grader.spec.calibration import read_calibrations
from grader.spec.exercise import DEFAULT_SPEC, load_spec


def test_reference_spec_describes_the_three_models(spec):
    assert [m.name for m in spec.models] == ["model_1", "model_2", "model_3"]
    assert [m.params for m in spec.models] == [55_050, 437_310, 51_450]
    assert [m.epochs for m in spec.models] == [30, 20, 30]
    assert {m.batch_size for m in spec.models} == {128}
    assert spec.model("model_3").layers[0].l2 == 0.0001
    assert spec.solution is not None and spec.solution.is_file()


def test_reference_accuracy_ranges_come_from_the_shipped_calibration(spec):
    calibration = read_calibrations(spec.calibration_path)[spec.calibration.key]
    for model in spec.models:
        runs = [run["test_accuracy"] for run in calibration["models"][model.name]["runs"]]
        assert model.accuracy is not None
        assert model.accuracy.min == round(min(runs) - 0.01, 4)
        assert model.accuracy.max == round(min(1.0, max(runs) + 0.01), 4)
        assert f"{len(runs)} calibration runs" in model.accuracy.derivation


def write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_margin_widens_the_calibrated_range(tmp_path):
    base = DEFAULT_SPEC.read_text().replace('calibration = "mnist_mlp.calibration.json"', 'calibration = "c.json"')
    (tmp_path / "c.json").write_text(
        json.dumps(
            {
                "models": {
                    name: {"runs": [{"test_accuracy": 0.95}, {"test_accuracy": 0.96}]}
                    for name in ("model_1", "model_2", "model_3")
                }
            }
        )
    )
    loaded = load_spec(write_spec(tmp_path, base.replace("margin = 0.01", "margin = 0.02")))
    assert (loaded.model("model_1").accuracy.min, loaded.model("model_1").accuracy.max) == (0.93, 0.98)


def calibration_runs(accuracy: float, backend: str = "tensorflow") -> dict:
    models = {name: {"runs": [{"test_accuracy": accuracy}]} for name in ("model_1", "model_2", "model_3")}
    return {"machine": {"backend": backend, backend: "1.0", "gpus": []}, "models": models}


def test_each_backend_and_device_has_its_calibration_and_the_nearest_stands_in(tmp_path):
    base = DEFAULT_SPEC.read_text().replace('calibration = "mnist_mlp.calibration.json"', 'calibration = "c.json"')
    path = write_spec(tmp_path, base)
    keyed = {"tensorflow/cpu": 0.95, "jax/cpu": 0.96, "jax/gpu": 0.97}
    calibrations = {key: calibration_runs(accuracy, key.split("/")[0]) for key, accuracy in keyed.items()}
    (tmp_path / "c.json").write_text(json.dumps({"format": 2, "calibrations": calibrations}))
    for asked, used in [("jax/gpu", "jax/gpu"), ("jax/cpu", "jax/cpu"), ("torch/gpu", "tensorflow/cpu"),
                        ("tensorflow/gpu", "tensorflow/cpu")]:  # fmt: skip
        loaded = load_spec(path, asked)
        assert loaded.calibration.key == used
        assert loaded.model("model_1").accuracy.max == round(keyed[used] + 0.01, 4)
        assert f"calibration runs on {used}" in loaded.model("model_1").accuracy.derivation
    del calibrations["tensorflow/cpu"]
    (tmp_path / "c.json").write_text(json.dumps({"format": 2, "calibrations": calibrations}))
    assert load_spec(path, "jax/tpu").calibration.key == "jax/cpu"  # the same backend before any other


def test_a_calibration_run_joins_those_of_other_backends(tmp_path):
    from grader.tools.calibrate import write_calibration

    path = tmp_path / "c.json"
    path.write_text(json.dumps({"format": 1, **calibration_runs(0.95)}))  # one machine's runs, on TensorFlow
    assert write_calibration(calibration_runs(0.96, "jax"), path) == "jax/cpu"
    written = json.loads(path.read_text())
    assert written["format"] == 2 and sorted(written["calibrations"]) == ["jax/cpu", "tensorflow/cpu"]
    assert write_calibration(calibration_runs(0.97, "jax"), path) == "jax/cpu"  # runs again on jax replace its own
    calibrations = json.loads(path.read_text())["calibrations"]
    assert calibrations["jax/cpu"]["models"]["model_1"]["runs"][0]["test_accuracy"] == 0.97
    assert calibrations["tensorflow/cpu"]["models"]["model_1"]["runs"][0]["test_accuracy"] == 0.95


def test_without_calibration_full_grading_is_refused_with_what_to_do(tmp_path):
    base = DEFAULT_SPEC.read_text().replace('calibration = "mnist_mlp.calibration.json"', 'calibration = "none.json"')
    loaded = load_spec(write_spec(tmp_path, base))
    assert loaded.model("model_1").accuracy is None
    with pytest.raises(SpecError, match=r"run `grader calibrate`.*or grade with --quick"):
        loaded.require_accuracy_ranges()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.replace("[exercise]", "[exercise\n"), "not valid TOML"),
        (lambda s: s.replace("params = 55050\n", ""), "missing key 'params'"),
        (lambda s: s.replace("accuracy = 3", "accuracy = 3\nstyle = 1"), "unknown keys \\['style'\\]"),
        (lambda s: s.replace("rate = 0.2 }", 'rate = 0.2, colour = "red" }', 1), "unknown keys \\['colour'\\]"),
    ],
)
def test_broken_specs_name_the_problem(tmp_path, mutate, message):
    with pytest.raises(SpecError, match=message):
        load_spec(write_spec(tmp_path, mutate(DEFAULT_SPEC.read_text())))


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match=r"cannot read the spec .* --spec"):
        load_spec(tmp_path / "nope.toml")
