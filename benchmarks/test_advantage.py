"""How much better models do on MNIST's test images than on its training images, honest or not:
the figures behind the grader's "trained on the test set" verdict (``grader.judge.checks``).

Trains models with plain Keras, from a few steps to their full epochs, on the training set
(honest) or with the test set among their data (not), and measures each as the evaluator does
(``grader.evaluation.evaluator``): on the 10,000 test images and on every 6th training image, and on
the same images moved by one pixel (a memorised image loses more to the move than a learnt one).
Prints one line per model and a summary of the statistics.

usage: python benchmarks/test_advantage.py MNIST.npz [--quick] [--seeds N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

# Layers of the models trained, as the exercise and common improvements write them
DENSE = {
    "tiny": [32],
    "model_1": [64, "drop0.2", 64, "drop0.2"],
    "model_2": [400, "drop0.4", 300, "drop0.4"],
    "model_3": ["l2:64", "drop0.5", "l2:16"],
}
FULL_EPOCHS = {"tiny": 1, "model_1": 30, "model_2": 20, "model_3": 30, "cnn": 10}


def build(name: str) -> Any:
    import keras
    from keras import layers

    if name == "cnn":
        stack = [
            keras.Input(shape=(28, 28, 1)), layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
            layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax"),
        ]  # fmt: skip
    else:
        stack = [keras.Input(shape=(784,))]
        for item in DENSE[name]:
            if isinstance(item, str) and item.startswith("drop"):
                stack.append(layers.Dropout(float(item[4:])))
            elif isinstance(item, str):
                stack.append(layers.Dense(int(item[3:]), activation="relu", kernel_regularizer=keras.regularizers.l2(1e-4)))
            else:
                stack.append(layers.Dense(item, activation="relu"))
        stack.append(layers.Dense(10, activation="softmax"))
    model = keras.Sequential(stack)
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.001), loss="categorical_crossentropy")
    return model


def shifted(images: np.ndarray) -> np.ndarray:
    """Each 28x28 image moved one pixel right and one down."""
    square = images.reshape(-1, 28, 28)
    moved = np.zeros_like(square)
    moved[:, 1:, 1:] = square[:, :-1, :-1]
    return moved.reshape(images.shape)


def accuracy(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(model.predict(images, batch_size=1000, verbose=0), axis=1) == labels))


def measure(model: Any, data: dict[str, np.ndarray], shape: tuple[int, ...]) -> dict[str, float]:
    test, seen = data["x_test"], data["x_train"][::6]
    prepared = {
        "test": test, "train": seen, "test_moved": shifted(test), "train_moved": shifted(seen),
    }  # fmt: skip
    labels = {"test": data["y_test"], "train": data["y_train"][::6]}
    figures = {key: accuracy(model, images.reshape(-1, *shape), labels[key.split("_")[0]]) for key, images in prepared.items()}
    figures["advantage"] = figures["test"] - figures["train"]
    # What the move costs on the test images beyond what it costs on training images
    figures["memorised"] = (figures["test"] - figures["test_moved"]) - (figures["train"] - figures["train_moved"])
    return figures


def train(name: str, x: np.ndarray, y: np.ndarray, steps: int | None, epochs: int, seed: int) -> Any:
    import keras

    keras.utils.set_random_seed(seed)
    model = build(name)
    if steps is not None:
        model.fit(x[: steps * 128], y[: steps * 128], batch_size=128, epochs=1, verbose=0, shuffle=True)
    else:
        model.fit(x, y, batch_size=128, epochs=epochs, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--quick", action="store_true", help="no full-epoch runs of the large models")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    import keras

    with np.load(arguments.data) as raw:
        data = {key: raw[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    for key in ("x_train", "x_test"):
        data[key] = data[key].astype("float32") / 255
    onehot = {key: keras.utils.to_categorical(data[key], 10) for key in ("y_train", "y_test")}
    both_x = np.concatenate([data["x_train"], data["x_test"]])
    both_y = np.concatenate([onehot["y_train"], onehot["y_test"]])
    order = np.random.default_rng(0).permutation(len(both_x))
    rows = []
    for seed in range(arguments.seeds):
        for name in ("tiny", "model_1", "model_2", "model_3", "cnn"):
            shape = (28, 28, 1) if name == "cnn" else (784,)
            honest = [("honest", None, 1, f"{steps} steps") for steps in (5, 20, 80)]
            honest += [("honest", None, epochs, f"{epochs} epochs") for epochs in sorted({1, 3, FULL_EPOCHS[name]})]
            cheats = [("test set", None, epochs, f"{epochs} epochs on the test set") for epochs in sorted({1, 3, 10})]
            cheats += [("both", None, epochs, f"{epochs} epochs on training and test sets") for epochs in (1, 3)]
            for kind, steps, epochs, label in honest + cheats:
                if arguments.quick and epochs > 3 and name in ("model_2", "cnn"):
                    continue
                if kind == "honest":
                    x, y = data["x_train"], onehot["y_train"]
                    steps = int(label.split()[0]) if "steps" in label else None
                elif kind == "test set":
                    x, y = data["x_test"], onehot["y_test"]
                else:
                    x, y = both_x[order], both_y[order]
                started = time.perf_counter()
                model = train(name, x.reshape(-1, *shape), y, steps, epochs, seed)
                figures = measure(model, data, shape)
                row = {"model": name, "kind": kind, "training": label, "seed": seed, **figures,
                       "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
                rows.append(row)
                print(
                    f"{name:8} {kind:9} {label:36} test {figures['test']:.4f} train {figures['train']:.4f} "
                    f"advantage {figures['advantage']:+.4f} memorised {figures['memorised']:+.4f} ({row['seconds']} s)",
                    flush=True,
                )
    for kind in ("honest", "test set", "both"):
        chosen = [row for row in rows if row["kind"] == kind]
        if chosen:
            print(
                f"{kind}: advantage {min(r['advantage'] for r in chosen):+.4f} to {max(r['advantage'] for r in chosen):+.4f}, "
                f"memorised {min(r['memorised'] for r in chosen):+.4f} to {max(r['memorised'] for r in chosen):+.4f} "
                f"({len(chosen)} models)"
            )
    spread = math.sqrt(0.5 * 0.5 * 2 / 10_000)
    print(f"the standard error of a difference of two shares of 10,000 images is at most {spread:.4f}")
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
