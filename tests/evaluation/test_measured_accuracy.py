"""How the evaluator counts a model right: its highest output's class, or, for one output, the
side of 0.5 (a sigmoid's probability) or of 0 (a linear unit's logit). No Keras: the model is a
stand-in with Keras' ``predict`` and last layer's ``activation``."""

from __future__ import annotations

import numpy as np

from grader.evaluation.evaluator import measured_accuracy


class _Unit:
    """A model's last layer, as far as measured_accuracy asks."""

    def __init__(self, activation: str) -> None:
        def function(values):
            return values

        function.__name__ = activation  # as Keras' own activation functions are named
        self.activation = function


class _OneOutput:
    def __init__(self, outputs, activation: str) -> None:
        self.outputs, self.layers = np.asarray(outputs, "float32").reshape(-1, 1), [_Unit(activation)]

    def predict(self, rows, batch_size, verbose):
        return self.outputs


def test_a_binary_classifier_is_right_above_one_half_or_above_zero_for_a_logit():
    labels = np.array([1, 0, 1, 0])
    assert measured_accuracy(_OneOutput([0.9, 0.2, 0.6, 0.4], "sigmoid"), np.zeros((4, 3)), labels) == 1.0
    # A linear unit trained from_logits: its 0.3 and -0.2 are sides of 0, not of 0.5.
    assert measured_accuracy(_OneOutput([0.3, -0.2, 2.0, -1.0], "linear"), np.zeros((4, 3)), labels) == 1.0
    assert measured_accuracy(_OneOutput([0.3, -0.2, 2.0, -1.0], "sigmoid"), np.zeros((4, 3)), labels) == 0.75


def test_a_classifier_of_several_classes_is_right_where_its_highest_output_is():
    class Softmax(_OneOutput):
        def __init__(self, outputs) -> None:
            self.outputs, self.layers = np.asarray(outputs, "float32"), [_Unit("softmax")]

    outputs = [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]]
    assert measured_accuracy(Softmax(outputs), np.zeros((3, 3)), np.array([1, 0, 1])) == round(2 / 3, 6)
