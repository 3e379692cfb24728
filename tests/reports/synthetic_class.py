"""A synthetic class for the similarity tests and benchmark: each student writes the MNIST
exercise in a style of their own (names, Keras API, hyperparameters, comments, extra cells),
as real classes do; some copy another student's notebook with renamed variables and changed
comments."""

from __future__ import annotations

import random
from pathlib import Path

import nbformat

IMPORTS = (
    "import numpy as np\nfrom keras.datasets import mnist\nfrom keras.models import Sequential\n"
    "from keras.layers import Dense, Dropout\nfrom keras.optimizers import RMSprop\n"
    "from keras.utils import to_categorical"
)
LOADS = (
    "(x_train, y_train), (x_test, y_test) = mnist.load_data()\n"
    "x_train = x_train.reshape(60000, 784).astype('float32') / 255\n"
    "x_test = x_test.reshape(10000, 784).astype('float32') / 255\n"
    "y_train = to_categorical(y_train, 10)\ny_test = to_categorical(y_test, 10)",
    "from keras.utils import np_utils\n(X_train, Y_train), (X_test, Y_test) = mnist.load_data()\n"
    "x_train = X_train.reshape(-1, 784) / 255.0\nx_test = X_test.reshape(-1, 784) / 255.0\n"
    "y_train = np_utils.to_categorical(Y_train)\ny_test = np_utils.to_categorical(Y_test)",
    "(a, b), (c, d) = mnist.load_data()\nx_train = (a.astype(np.float32) / 255.).reshape(len(a), 28 * 28)\n"
    "x_test = (c.astype(np.float32) / 255.).reshape(len(c), 28 * 28)\n"
    "y_train, y_test = to_categorical(b, 10), to_categorical(d, 10)",
)
COMMENTS = (
    "# build the network",
    "# Model 1: two hidden layers",
    "# train it",
    "# let's see how it does",
    "# TODO tune this",
    "# evaluate on the test set",
    "# plot the curves",
    "# check shapes first",
)
PRINTS = (
    "print('done')",
    "print(model_1.count_params())",
    "print(x_train.dtype)",
    "print(len(x_test))",
    "print(history.history.keys())",
    "print(y_train[:3])",
)
EXERCISE = (([64, 64], [0.2, 0.2], 30), ([400, 300], [0.4, 0.4], 20))


def _model(rng: random.Random, style: str, name: str, units: list[int], rates: list[float], epochs: int) -> list[str]:
    """The cells that build, compile and train one model, in one of three styles."""
    if style == "add":
        lines = [f"{name} = Sequential()", f"{name}.add(Dense({units[0]}, activation='relu', input_shape=(784,)))"]
        lines += [f"{name}.add(Dropout({rates[0]}))"]
        for size, rate in zip(units[1:], rates[1:], strict=True):
            lines += [f"{name}.add(Dense({size}, activation='relu'))", f"{name}.add(Dropout({rate}))"]
        lines.append(f"{name}.add(Dense(10, activation='softmax'))")
    elif style == "list":
        layers = [f"Dense({units[0]}, activation='relu', input_shape=(784,))", f"Dropout({rates[0]})"]
        for size, rate in zip(units[1:], rates[1:], strict=True):
            layers += [f"Dense({size}, activation='relu')", f"Dropout({rate})"]
        layers.append("Dense(10, activation='softmax')")
        lines = [f"{name} = Sequential([" + ", ".join(layers) + "])"]
    else:
        lines = ["from keras import Input, Model", "inputs = Input(shape=(784,))"]
        lines += [f"h = Dense({units[0]}, activation='relu')(inputs)", f"h = Dropout({rates[0]})(h)"]
        for size, rate in zip(units[1:], rates[1:], strict=True):
            lines += [f"h = Dense({size}, activation='relu')(h)", f"h = Dropout({rate})(h)"]
        lines += ["outputs = Dense(10, activation='softmax')(h)", f"{name} = Model(inputs, outputs)"]
    lines.append(f"{name}.summary()")
    history = rng.choice(["history", f"history_{name}", "h", "hist"])
    train = (
        f"{name}.compile(loss='categorical_crossentropy', optimizer=RMSprop(learning_rate=0.001), "
        "metrics=['accuracy'])\n"
        f"{history} = {name}.fit(x_train, y_train, batch_size=128, epochs={epochs}, "
        f"verbose={rng.choice([0, 1, 2])}, validation_data=(x_test, y_test))"
    )
    return ["\n".join(lines), train]


def student_cells(seed: int) -> list[str]:
    """The code cells of one honest student's notebook."""
    rng = random.Random(seed)
    style = rng.choice(["add", "list", "functional"])
    cells = [IMPORTS, rng.choice(LOADS)]
    for number, (units, rates, epochs) in enumerate(EXERCISE, start=1):
        cells += _model(rng, style, f"model_{number}", units, rates, epochs)
        cells.append(f"score = model_{number}.evaluate(x_test, y_test, verbose=0)\nprint('Test accuracy:', score[1])")
    extra = [rng.choice([128, 256, 512, 150, 200]) for _ in range(rng.randint(1, 3))]
    name = rng.choice(["model_3", "mlp", "model_4"])
    built, trained = _model(
        rng, rng.choice(["add", "list"]), name, extra, [rng.choice([0.1, 0.2, 0.3, 0.5])] * len(extra), 20
    )
    cells += [f"# {rng.choice(['my improvement', 'wider model', 'try more units'])}\n{built}", trained]
    cells = [f"{rng.choice(COMMENTS)}\n{cell}" if rng.random() < 0.4 else cell for cell in cells]
    for _ in range(rng.randint(1, 4)):
        cells.insert(rng.randint(2, len(cells)), rng.choice(PRINTS))
    for _ in range(rng.randint(0, 3)):
        cells.append(
            rng.choice(
                [
                    "import matplotlib.pyplot as plt\nplt.plot(history.history['loss'])\nplt.show()",
                    f"print(x_train.shape, {rng.randint(0, 9)})",
                    "for layer in model_1.layers:\n    print(layer.name, layer.output_shape)",
                    f"np.random.seed({rng.randint(0, 99)})",
                ]
            )
        )
    return cells


def disguised_copy(cells: list[str]) -> list[str]:
    """Another student's cells with variables renamed and a comment added."""
    renamed = [cell.replace("history", "hist").replace("score", "result").replace("mlp", "net") for cell in cells]
    return [*renamed[:2], "# I worked on this on my own", *renamed[2:]]


def write_notebook(cells: list[str], path: Path) -> Path:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell) for cell in cells])  # type: ignore[no-untyped-call]
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
    return path


def write_class(folder: Path, honest: int, copied: tuple[int, ...]) -> dict[str, Path]:
    """``honest`` students' notebooks and a disguised copy of each of ``copied``'s, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    notebooks = {
        f"student_{n:03d}": write_notebook(student_cells(n), folder / f"student_{n:03d}.ipynb") for n in range(honest)
    }
    for source in copied:
        name = f"copy_of_{source:03d}"
        notebooks[name] = write_notebook(disguised_copy(student_cells(source)), folder / f"{name}.ipynb")
    return notebooks
