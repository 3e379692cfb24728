"""A learning rate that follows a Keras schedule: described in the kernel, read as untrusted
facts, stated by the spec `grader new` writes, and checked against it."""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from grader.assign.draft import DraftModel, _learning_rate
from grader.judge.checks import check_optimizer
from grader.judge.facts import CompileFacts, ModelFacts, read_schedule
from grader.protocol.keras_objects import describe_compiled
from grader.spec.exercise import ModelSpec, Schedule, _initial_rate
from grader.spec.exercise import _schedule as spec_schedule

DECAY = Schedule("ExponentialDecay", (("initial_learning_rate", 0.01), ("decay_steps", 100.0), ("decay_rate", 0.9),
                                      ("staircase", False), ("name", "ExponentialDecay")))  # fmt: skip


def compiled(schedule=None, learning_rate=0.01):
    facts = CompileFacts("Adam", learning_rate, "categorical_crossentropy", schedule=schedule)
    return ModelFacts(name="net", origin="fit", architecture=None, problem=None, compile=facts, fits=(), weights=(),
                      cell=None)  # fmt: skip


def spec_model(schedule=None):
    return ModelSpec(
        name="net", layers=(), params=1, optimizer="Adam", learning_rate=0.01, losses=("categorical_crossentropy",),
        batch_size=32, epochs=5, accuracy=None, points={"optimizer": 1}, schedule=schedule,
    )  # fmt: skip


def test_the_kernel_describes_a_schedule_and_the_grader_reads_it_back():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    decay = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=100, decay_rate=0.9)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=decay), loss="categorical_crossentropy")
    described = describe_compiled(model)
    assert described["learning_rate_schedule"]["class_name"] == "ExponentialDecay"
    schedule = read_schedule(described["learning_rate_schedule"])
    assert schedule is not None and dict(schedule.config)["decay_steps"] == 100.0
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="categorical_crossentropy")
    assert describe_compiled(model)["learning_rate_schedule"] is None


def test_a_schedule_is_checked_by_its_class_and_values():
    assert check_optimizer(spec_model(DECAY), compiled(DECAY))[0] == "pass"
    slower = dataclasses.replace(DECAY, config=(("initial_learning_rate", 0.01), ("decay_steps", 1000.0)))
    status, _, _, message = check_optimizer(spec_model(DECAY), compiled(slower))
    assert status == "fail" and "expected ExponentialDecay(initial_learning_rate=0.01, decay_steps=100" in message
    status, _, _, message = check_optimizer(spec_model(DECAY), compiled(None))
    assert status == "fail" and "is a constant, expected the schedule ExponentialDecay(" in message
    status, _, _, message = check_optimizer(spec_model(None), compiled(DECAY))
    assert status == "fail" and "follows the schedule ExponentialDecay(" in message and "expected 0.01" in message


def test_grader_new_writes_the_schedule_as_the_spec_reads_it():
    model = DraftModel("net", (), 1, "Adam", 0.01, "categorical_crossentropy", 32, 5, schedule=DECAY)
    import tomlkit

    table = tomlkit.table()
    for entry in _learning_rate(model):
        if not isinstance(entry, str):
            table.add(*entry)
    value = tomllib.loads(tomlkit.dumps(table))["learning_rate"]
    assert value["schedule"] == "ExponentialDecay" and _initial_rate("net", value) == 0.01
    assert spec_schedule("net", value) == DECAY
    with pytest.raises(ValueError, match="without `schedule`"):
        spec_schedule("net", {"initial_learning_rate": 0.01})
