"""``grader.check`` in a notebook: the grader's own checks of a built model, no training."""

import pytest

from grader.errors import SpecError
from grader.judge.pipeline import grade_notebook
from tests.conftest import FIXTURES

pytestmark = pytest.mark.kernel  # imports TensorFlow


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def model_2(keras, units=400, compiled=True):
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dropout(0.4),
            keras.layers.Dense(300, activation="relu"),
            keras.layers.Dropout(0.4),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    if compiled:
        model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.001), loss="categorical_crossentropy")
    return model


def test_a_correct_model_passes_the_checks_that_need_no_training(keras):
    from grader import check

    report = check(model_2(keras), name="model_2")
    assert [(c.id, c.status) for c in report.checks] == [
        ("model_2.architecture", "pass"), ("model_2.params", "pass"), ("model_2.optimizer", "pass"),
    ]  # fmt: skip
    assert report.passed and "all checks pass" in str(report)


def test_a_wrong_model_says_what_to_fix_in_text_and_html(keras):
    from grader import check

    report = check(model_2(keras, units=512, compiled=False), name="model_2")
    statuses = {c.id: c.status for c in report.checks}
    assert statuses == {"model_2.architecture": "fail", "model_2.params": "fail", "model_2.optimizer": "fail"}
    assert "layer 1 should be Dense(400, relu) but is Dense(512, relu)" in str(report)
    html = report._repr_html_()
    assert "<table" in html and "was never compiled" in html


def test_unknown_models_and_missing_specs_say_what_to_do(keras, tmp_path):
    from grader import check

    with pytest.raises(ValueError, match=r"The spec names model_1, model_2, model_3.*name='model_1'"):
        check(model_2(keras))
    with pytest.raises(SpecError, match=r"Pass check\(model, spec='path/to/mnist_mlp.toml'\) or set GRADER_SPEC"):
        check(model_2(keras), name="model_2", spec=tmp_path / "missing.toml")


def test_check_works_inside_a_graded_sandboxed_notebook(mnist_path):
    from grader.judge.pipeline import GradingOptions, prepare_context

    context = prepare_context(GradingOptions(quick=True, timeout=120), data_path=mnist_path)
    result = grade_notebook(FIXTURES / "notebooks" / "calls_self_check.ipynb", context).result
    assert not [w for w in result.warnings if w.startswith("cell")], result.warnings
