"""Class figures and the calibration band: pure functions of plain data."""

import base64
import json

import pytest

from grader.judge.checks import CheckResult
from grader.judge.results import GradeRun, ModelRecord, SubmissionResult
from grader.reports import plots
from grader.reports.summary import CheckRate, Point, outlier_flags, summarize, typical_epoch_seconds
from grader.spec.calibration import epoch_bands, read_calibration


def svg_text(data_uri: str) -> str:
    return base64.b64decode(data_uri.split(",", 1)[1]).decode()


def test_tukey_fences_mark_only_the_far_values():
    assert outlier_flags([0.97, 0.975, 0.98, 0.972, 0.5]) == [False, False, False, False, True]
    assert outlier_flags([1.0, 2.0, 100.0]) == [False, False, False]  # too few to tell


def test_the_first_epoch_is_left_out_of_the_typical_epoch_time():
    assert typical_epoch_seconds([9.0, 1.0, 2.0, 3.0]) == 2.0
    assert typical_epoch_seconds([4.0]) == 4.0
    assert typical_epoch_seconds([]) is None


def submission(sid, verdict, accuracy, times):
    check = CheckResult("model_1.params", verdict, 1, 1, "", 1.0 if verdict == "pass" else 0.0, 1)
    skipped = CheckResult("model_1.accuracy", "skipped", None, None, "", 0, 3)
    record = ModelRecord(None, {}, tuple(times), accuracy)
    return SubmissionResult(sid, sid, "graded", check.points, 1, (check, skipped), models={"model_1": record})


def test_summary_counts_pass_rates_where_checks_ran_and_marks_outliers():
    results = [submission(f"s{i}", "pass", 0.97 + i / 1000, [5.0, 1.0, 1.0]) for i in range(5)]
    results.append(submission("slow", "fail", None, [5.0, 30.0, 30.0]))
    summary = summarize(GradeRun("0", "full", "MNIST", tuple(results)))
    assert summary.check_rates == (CheckRate("model_1.params", 5, 6), CheckRate("model_1.accuracy", 0, 0))
    assert [point.submission for point in summary.test_values["model_1"]] == ["s0", "s1", "s2", "s3", "s4"]
    assert [point.submission for point in summary.epoch_seconds["model_1"] if point.outlier] == ["slow"]
    assert summary.statuses == {"graded": 6} and summary.scores == (1, 1, 1, 1, 1, 0)


def test_bands_span_the_runs_at_each_epoch_over_the_epochs_all_have():
    bands = epoch_bands([{"loss": [3.0, 2.0, 1.0]}, {"loss": [2.5, 2.2]}, {"accuracy": [0.5]}])
    assert bands["loss"].low == (2.5, 2.0) and bands["loss"].high == (3.0, 2.2)
    assert bands["accuracy"].low == (0.5,)


def test_the_shipped_calibration_has_a_band_per_epoch_and_reference_epoch_times(spec):
    calibration = read_calibration(spec.calibration_path)
    written = json.loads(spec.calibration_path.read_text())
    for name, model in calibration.models.items():  # the band the file states is the one its runs give
        assert written["models"][name]["band"] == {metric: band.to_dict() for metric, band in model.bands.items()}
    for model in spec.models:
        bands = calibration.models[model.name].bands
        assert {len(band.low) for band in bands.values()} == {model.epochs}
        assert all(low <= high for band in bands.values() for low, high in zip(band.low, band.high, strict=True))
        assert calibration.models[model.name].median_epoch_seconds > 0


def test_learning_curves_draw_the_notebook_over_the_band(spec):
    bands = spec.calibration.models["model_1"].bands
    figure = svg_text(plots.learning_curves({"loss": [0.5, 0.3], "val_loss": [0.4, 0.35]}, bands))
    assert "Loss" in figure and "Accuracy" in figure
    assert "this notebook, validation" in figure and "reference training" in figure
    assert plots.learning_curves({}, {}) is None


def test_distributions_name_their_outliers():
    points = {"model_1": (Point("typical", 0.97, False), Point("odd_one", 0.2, True))}
    figure = svg_text(plots.distribution(points, "test accuracy", "Test accuracy", {"model_1": (0.96, 0.98)}, "ok"))
    assert "odd_one" in figure and "typical" not in figure
    assert plots.distribution({"model_1": ()}, "x", "t") is None


@pytest.mark.parametrize("scores", [[], [0.0, 24.0, 12.5]])
def test_class_plots_render_even_for_edge_cases(scores):
    assert svg_text(plots.score_histogram(scores, 24)).startswith("<?xml")
    assert "2/3" in svg_text(plots.pass_rates([CheckRate("model_1.params", 2, 3), CheckRate("m.accuracy", 0, 0)]))


def test_only_improvements_whose_training_passed_are_on_the_leaderboard(spec):
    """A model trained on the test set tops any board: it has no place on one."""
    from grader.judge.checks import CheckResult
    from grader.judge.results import GradeRun, ModelRecord, SubmissionResult
    from grader.platforms.results import gradescope_results
    from grader.reports.summary import leaderboard
    from grader.spec.architecture import Architecture
    from grader.spec.exercise import load_spec
    from grader.spec.layers import Layer
    from tests.conftest import ROOT

    open_spec = load_spec(ROOT / "reference" / "mnist_mlp_open.toml")
    architecture = Architecture((784,), (Layer("Dense", units=10, activation="softmax"),))

    def submitted(sid: str, accuracy: float, training: str) -> SubmissionResult:
        check = CheckResult("model_3.training", training, None, None, "", 1 if training == "pass" else 0, 1)
        model = ModelRecord(architecture, test_value=accuracy)
        return SubmissionResult(sid, f"{sid}.ipynb", "graded", 1, 1, (check,), models={"model_3": model})

    honest, forged = submitted("honest", 0.98, "pass"), submitted("forged", 1.0, "fail")
    board = leaderboard(GradeRun("0", "full", "MNIST", (forged, honest)), "model_3")
    assert [standing.submission for standing in board] == ["honest"]
    assert "leaderboard" in gradescope_results(honest, open_spec, 1.0)
    assert "leaderboard" not in gradescope_results(forged, open_spec, 1.0)
