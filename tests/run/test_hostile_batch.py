"""Hostile notebooks in one batch with correct ones (``--jobs 2``, quick): none may stop the
batch, hurt another notebook, forge a grade or break a report. Each attack is a notebook
written here; the batch runs once, and each test reads its outcome.

Attacks on the files the grader reads reach them the way any notebook can: the student's code
runs in the kernel's process, so it can change what the instrumentation writes
(``grader.kernel._ledger``) or write into its facts folder itself.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from click.testing import CliRunner

from grader.cli import cli
from tests.conftest import ROOT

pytestmark = pytest.mark.kernel

SOLUTION = nbformat.read(ROOT / "reference" / "mnist_mlp_solution.ipynb", as_version=4)
LEDGER = "import os, grader.kernel as kernel\nledger = kernel._ledger\n"
FORGE_MANIFEST = LEDGER + "ledger.write_manifest = lambda: None  # the grader's own copy is never written again\n"
WRITE_LIMIT_GIB = 0.25
COMPILE = (
    "{model}.compile(loss='categorical_crossentropy', optimizer=RMSprop(learning_rate=0.001), metrics=['accuracy'])\n"
)
# A model trained on the test set, whose weights the routes below put into model_1
CHEAT = (
    "import keras\ncheat = keras.models.clone_model({model})\n"
    "cheat.compile(optimizer='rmsprop', loss='categorical_crossentropy')\n"
    "cheat.fit(x_test, y_test, batch_size=128, epochs=30, verbose=0)\n"
)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


def solution(
    *extra: str, fits: dict[str, str] | None = None, models: tuple[str, ...] = ("model_1", "model_2", "model_3")
) -> nbformat.NotebookNode:
    """The model solution's code for ``models``, their ``fit`` cells replaced by ``fits`` where
    given (after the compile), and ``extra`` cells at the end."""
    notebook = nbformat.v4.new_notebook()
    for cell in SOLUTION.cells:
        source = cell.source
        if cell.cell_type != "code" or any(f"model_{n}" in source for n in "123" if f"model_{n}" not in models):
            continue
        for model, fit in (fits or {}).items():
            if source.startswith(f"{model}.compile("):
                source = COMPILE.format(model=model) + fit
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    notebook.cells.extend(nbformat.v4.new_code_cell(source) for source in extra)
    return notebook


def model_1(*extra: str, fit: str | None = None) -> nbformat.NotebookNode:
    """The solution's model_1 alone: a notebook out of 5 points in quick mode."""
    return solution(*extra, fits={"model_1": fit} if fit else None, models=("model_1",))


def cells(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])


NOTEBOOKS = {
    # a correct notebook, and two whose names map to the same safe file name
    "solution": solution(),
    "x y": cells("print('x y')"),
    "x_y": cells("print('x_y')"),
    # one notebook stops or corrupts the batch
    "fifo_manifest": model_1(FORGE_MANIFEST + "os.remove(ledger.facts_dir / 'manifest.json')\n"
                             "os.mkfifo(ledger.facts_dir / 'manifest.json')"),
    "fifo_config": model_1(LEDGER + "folder = ledger.facts_dir / ledger.snapshots[id(model_1)][0]\n"
                           "os.remove(folder / 'config.json')\nos.mkfifo(folder / 'config.json')"),
    "deep_manifest": cells(FORGE_MANIFEST + "open(ledger.facts_dir / 'manifest.json', 'w').write('[' * 50_000 + ']' * 50_000)"),
    "huge_number": cells(
        FORGE_MANIFEST + "text = '{\"environment\": {\"keras\": \"3\"}, \"models\": {\"model_1\": "
        "{\"snapshot\": \"s\", \"compile\": {\"learning_rate\": 1' + '0' * 400 + '}}}}'\n"
        "open(ledger.facts_dir / 'manifest.json', 'w').write(text)"
    ),
    # untrusted values of every size, cut at the boundary; an honest NaN; widgets
    "cut_at_the_boundary": model_1(
        LEDGER + "ledger.manifest['environment']['devices'] = None\n"
        "fit = ledger.records[id(model_1)]['fits'][0]\n"
        "fit['history']['loss'] = [1e308] * 3\nfit['history']['accuracy'] = [0.5] * 100_000",
        "raise ValueError('x' * 16_000_000)",
        "for i in range(100_000):\n    print('line', i)\nprint('x' * 10_000_000)",
        "from ipykernel.comm import Comm\ncomm = Comm(target_name='jupyter.widget', data={'state': {}})\n"
        "for _ in range(40):\n    comm.send({'junk': 'x' * 2**20})",
    ),
    "a_nan_pixel": solution(fits={"model_1": "x_train[0, 0] = np.nan\n"
                                  "model_1.fit(x_train, y_train, batch_size=128, epochs=30, verbose=0)"}),
    # one notebook hurts the others or the machine
    "thread_bomb": model_1(
        "import threading, time\nthreads = []\ntry:\n    while len(threads) < 100_000:\n"
        "        threads.append(threading.Thread(target=time.sleep, args=(10,), daemon=True))\n"
        "        threads[-1].start()\nexcept RuntimeError as error:\n    print('refused after', len(threads), error)\n"
        "time.sleep(10)"
    ),
    "disk_filler": model_1(LEDGER + "with open(ledger.facts_dir / 'junk', 'wb') as out:\n"
                           "    for _ in range(300):\n        out.write(b'0' * 2**20)"),
    "segfault": model_1("import ctypes\nctypes.string_at(0)"),
    # forged grades with plain Keras: three models, three forgeries
    "forgeries_of_training": solution(fits={
        "model_1": "import keras\nclass Abort(keras.callbacks.Callback):\n    def on_train_begin(self, logs=None):\n"
                   "        raise RuntimeError('stopped before the first batch')\n"
                   "try:\n    model_1.fit(x_train, y_train, batch_size=128, epochs=30, callbacks=[Abort()])\n"
                   "except RuntimeError:\n    pass\n"
                   "for start in range(0, 10_000, 128):\n"
                   "    model_1.train_on_batch(x_test[start:start + 128], y_test[start:start + 128])",
        "model_2": "import keras\nclass Stop(keras.callbacks.Callback):\n    def on_epoch_end(self, epoch, logs=None):\n"
                   "        self.model.stop_training = True\n"
                   "model_2.fit(x_train, y_train, batch_size=128, epochs=20, callbacks=[Stop()], verbose=0)",
        "model_3": "model_3.fit(x_train, y_train, batch_size=128, epochs=30, steps_per_epoch=2, verbose=0)",
    }),
    "forgeries_of_data": solution(fits={
        "model_1": "shifted = np.roll(x_test.reshape(-1, 28, 28), 1, axis=2).reshape(-1, 784)\n"
                   "model_1.fit(np.concatenate([shifted, x_train[10_000:]]), np.concatenate([y_test, y_train[10_000:]]),\n"
                   "            batch_size=128, epochs=30, verbose=0)",
        "model_2": "for fit in range(20):\n    rows = slice(fit * 470, fit * 470 + 599)\n"
                   "    model_2.fit(np.concatenate([x_test[rows], x_train[599:]]),\n"
                   "                np.concatenate([y_test[rows], y_train[599:]]), batch_size=128, epochs=1, verbose=0)",
        "model_3": "import tensorflow as tf\n"
                   "model_3.fit(tf.constant(np.concatenate([x_test, x_train[10_000:]])),\n"
                   "            tf.constant(np.concatenate([y_test, y_train[10_000:]])), batch_size=128, epochs=30, verbose=0)",
    }),
    "trained_on_the_test_set": model_1(fit="model_1.fit(x_test, y_test, batch_size=128, epochs=30, verbose=0)"),
    # what Keras draws, not what the data shows to whoever looks, and training outside fit
    "forgeries_of_what_was_drawn": solution(fits={
        "model_1": "import tensorflow as tf\npasses = []\n"
                   "def rows():\n    passes.append(1)\n    x, y = (x_train, y_train) if len(passes) == 1 else (x_test, y_test)\n"
                   "    for start in range(0, len(x), 1000):\n        yield x[start:start + 1000], y[start:start + 1000].astype('float32')\n"
                   "data = tf.data.Dataset.from_generator(rows, output_signature=(tf.TensorSpec((None, 784), tf.float32),\n"
                   "                                      tf.TensorSpec((None, 10), tf.float32))).unbatch().batch(128)\n"
                   "model_1.fit(data, epochs=30, verbose=0)",
        "model_2": "import keras\nclass Batches(keras.utils.PyDataset):\n    shape = x_train.shape\n"
                   "    __array_interface__ = property(lambda self: x_train.__array_interface__)\n"
                   "    def __init__(self):\n        super().__init__()\n"
                   "    def __len__(self):\n        return len(x_test) // 128\n"
                   "    def __getitem__(self, index):\n        if isinstance(index, slice):\n            return self\n"
                   "        return x_test[index * 128:(index + 1) * 128], y_test[index * 128:(index + 1) * 128]\n"
                   "model_2.fit(Batches(), batch_size=128, epochs=20, verbose=0)",
        "model_3": "import tensorflow as tf\nimport keras\n"
                   "for start in range(0, 2048, 128):\n    with tf.GradientTape() as tape:\n"
                   "        predicted = model_3(x_test[start:start + 128], training=True)\n"
                   "        loss = keras.ops.mean(keras.losses.categorical_crossentropy(y_test[start:start + 128], predicted))\n"
                   "    gradients = tape.gradient(loss, model_3.trainable_variables)\n"
                   "    model_3.optimizer.apply_gradients(zip(gradients, model_3.trainable_variables))\n"
                   "model_3.fit(x_train, y_train, batch_size=128, epochs=30, verbose=0)",
    }),
    # weights trained elsewhere (a clone of the model, on the test set), put into the graded model
    "forgeries_of_weights": solution(fits={
        "model_1": CHEAT.format(model="model_1") +
                   "class Swap(keras.callbacks.Callback):\n    def on_train_end(self, logs=None):\n"
                   "        self.model.set_weights(cheat.get_weights())\n"
                   "model_1.fit(x_train, y_train, batch_size=128, epochs=30, verbose=0, callbacks=[Swap()])",
        "model_2": "model_2.fit(x_train, y_train, batch_size=128, epochs=20, verbose=0)\n" + CHEAT.format(model="model_2") +
                   "model_2.set_weights(cheat.get_weights())\nmodel_2.fit(x_train, y_train, batch_size=128, epochs=0, verbose=0)",
    }, models=("model_1", "model_2")),
    # models the evaluator could not rebuild, refused where the architecture is read
    "models_keras_cannot_rebuild": solution(fits={
        "model_1": "import keras\nclass Dense(keras.layers.Dense):\n    pass\n"
                   "model_1 = keras.Sequential([keras.Input(shape=(784,)), Dense(64, activation='relu'), keras.layers.Dropout(0.2),\n"
                   "    Dense(64, activation='relu'), keras.layers.Dropout(0.2), Dense(10, activation='softmax')])\n"
                   "model_1.compile(loss='categorical_crossentropy', optimizer=keras.optimizers.RMSprop(learning_rate=0.001))\n"
                   "model_1.fit(x_train, y_train, batch_size=128, epochs=30, verbose=0)",
        "model_2": "import keras\nlayers = keras.layers\ninputs = keras.Input(shape=(784,))\n"
                   "hidden = layers.Dropout(0.4)(layers.Dense(400, activation='relu')(inputs))\n"
                   "hidden = layers.Dropout(0.4)(layers.Dense(300, activation='relu')(hidden))\n"
                   "model_2 = keras.Model(inputs, layers.Dense(10, activation='softmax')(hidden))\n"
                   "config = model_2.get_config()\nconfig['output_layers'] = ['nowhere', 0, 0]\nmodel_2.get_config = lambda: config\n"
                   "model_2.compile(loss='categorical_crossentropy', optimizer=keras.optimizers.RMSprop(learning_rate=0.001))\n"
                   "model_2.fit(x_train, y_train, batch_size=128, epochs=20, verbose=0)",
    }, models=("model_1", "model_2")),
    "runs_the_reference_solution": cells(
        "import json\nsolution = json.load(open('/grader/reference/mnist_mlp_solution.ipynb'))\n"
        "for cell in solution['cells']:\n    if cell['cell_type'] == 'code':\n        exec(''.join(cell['source']))"
    ),
    "forges_the_manifest": model_1(
        "import json\nimport grader.kernel as hooks\nhooks.finish = lambda: None\n"
        "forged = {'environment': {'tensorflow': 'x'}, 'models': {'model_1': {'snapshot': '../..'}}}\n"
        "json.dump(forged, open(hooks._ledger.facts_dir / 'manifest.json', 'w'))"
    ),
    # reports
    "script_in_outputs": model_1(
        "from IPython.display import display\n"
        f"display({{'image/png': '{PNG}'}}, raw=True, metadata={{'image/png': {{'width': '1 onerror=window.pwned=1'}}}})"
    ),
}  # fmt: skip
NOTEBOOKS["script_in_outputs"].cells.append(nbformat.v4.new_markdown_cell("[see](javascript:window.pwned=2)"))


@pytest.fixture(scope="module")
def batch(mnist_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    for name, notebook in NOTEBOOKS.items():
        nbformat.write(notebook, folder / f"{name}.ipynb")
    out = tmp_path_factory.mktemp("reports")
    arguments = ["grade", str(folder), "--out", str(out), "--quick", "--jobs", "2", "--timeout", "150",
                 "--write-limit", str(WRITE_LIMIT_GIB), "--data", str(mnist_path)]  # fmt: skip
    first = CliRunner().invoke(cli, arguments)
    results = {r["id"]: r for r in json.loads((out / "results.json").read_text())["submissions"]}
    again = CliRunner().invoke(cli, arguments)  # every result comes from the store: the pages are drawn again
    return {"first": first, "again": again, "out": out, "results": results}


def checks(result: dict) -> dict[str, dict]:
    return {check["id"]: check for check in result["checks"]}


def test_the_batch_finishes_twice_and_writes_every_output(batch):
    assert batch["first"].exit_code == 0, batch["first"].output
    assert batch["again"].exit_code == 0, batch["again"].output
    assert f"Reused {len(NOTEBOOKS)} earlier results" in batch["again"].output
    out = batch["out"]
    for name in ("index.html", "gradebook.csv", "checks.csv", "results.json"):
        assert (out / name).stat().st_size > 0
    assert set(batch["results"]) == set(NOTEBOOKS)
    assert len(list((out / "submissions").glob("*.html"))) == len(NOTEBOOKS)
    assert "could not be drawn" not in batch["first"].output + batch["again"].output


def test_correct_notebooks_get_full_marks_whatever_ran_beside_them(batch):
    results = batch["results"]
    for name in ("solution", "a_nan_pixel"):  # a NaN loss is the notebook's own, honest result
        assert (results[name]["status"], results[name]["score"], results[name]["max_score"]) == ("graded", 15, 15)
    for name in ("cut_at_the_boundary", "thread_bomb", "disk_filler", "script_in_outputs"):
        model_1 = [check["status"] for check in results[name]["checks"] if check["id"].startswith("model_1.")]
        assert model_1 == ["pass", "pass", "pass", "pass", "skipped"], (name, results[name]["checks"])


def test_forgeries_of_training_fail_the_training_check_and_say_why(batch):
    result = batch["results"]["forgeries_of_training"]
    assert result["score"] == 12
    messages = {name: checks(result)[f"{name}.training"]["message"] for name in ("model_1", "model_2", "model_3")}
    assert "a fit raised an error after 0 of the 1 epochs it ran" in messages["model_1"]
    assert "trained outside fit (train_on_batch or a training loop of its own) for 79 steps" in messages["model_1"]
    assert "trained on 9,98" in messages["model_1"]  # the test images it got through train_on_batch
    assert "a fit stopped early (a callback set stop_training) after 1 of the 1 epochs" in messages["model_2"]
    assert "a fit took 2 training steps where 1 epochs of its data in batches of 128 take 16" in messages["model_3"]


def test_forgeries_of_the_training_data_are_seen_through(batch):
    result = batch["results"]["forgeries_of_data"]
    assert result["score"] == 12
    messages = {name: checks(result)[f"{name}.training"]["message"] for name in ("model_1", "model_2", "model_3")}
    assert "it was trained on 9,97" in messages["model_1"]  # shifted by a pixel
    assert "it was trained on 11,9" in messages["model_2"]  # 599 in each of 20 fits
    assert "it was trained on 9,98" in messages["model_3"]  # as a tf.Tensor
    assert (
        "it was trained on 9,98" in checks(batch["results"]["trained_on_the_test_set"])["model_1.training"]["message"]
    )
    reference = batch["results"]["runs_the_reference_solution"]
    assert reference["score"] == 0 and any("FileNotFoundError" in w for w in reference["warnings"])
    assert "invalid file name '../..'" in " ".join(batch["results"]["forges_the_manifest"]["warnings"])


def test_what_keras_draws_is_fingerprinted_whatever_the_data_shows(batch):
    result = batch["results"]["forgeries_of_what_was_drawn"]
    messages = {name: checks(result)[f"{name}.training"]["message"] for name in ("model_1", "model_2", "model_3")}
    assert result["score"] == 12 and all(
        check["status"] != "pass" for check in result["checks"] if "training" in check["id"]
    )
    # a tf.data pass after the first (quick mode's 16 batches of 128), a PyDataset that shows training arrays to
    # whoever looks (78 batches): one row in 16 of what Keras drew is fingerprinted
    assert 2048 // 16 - 30 < drawn_test_images(messages["model_1"]) <= 2048
    assert 9984 // 16 - 100 < drawn_test_images(messages["model_2"]) <= 9984
    assert "trained outside fit (train_on_batch or a training loop of its own) for 16 steps" in messages["model_3"]


def drawn_test_images(message: str) -> int:
    """The test images a training check counted among what Keras drew: a lower bound."""
    found = re.search(r"it was trained on at least ([\d,]+) test images", message)
    assert found, message
    return int(found[1].replace(",", ""))


def test_weights_from_elsewhere_fail_the_training_and_a_fit_of_no_epoch_is_not_training(batch):
    result = batch["results"]["forgeries_of_weights"]
    training = checks(result)["model_1.training"]
    assert training["status"] == "fail"
    assert (
        "its weights are not all its own training's: set_weights on the model, weights that the training of cheat "
        "produced (in cell "
        in training["message"]
        and ", during fit 1)" in training["message"]
    )
    # The 20 epochs' snapshot is graded, not the weights put in before a fit of no epoch: said, not scored
    assert checks(result)["model_2.training"]["status"] == "pass"
    assert any(
        warning.startswith(
            "model_2's weights were replaced after it was trained: set_weights on the model, weights "
            "that the training of cheat produced (in cell "
        )
        and warning.endswith("after fit 1); it is graded as it was trained.")
        for warning in result["warnings"]
    )


def test_models_the_evaluator_could_not_rebuild_are_refused_where_their_architecture_is_read(batch):
    result = batch["results"]["models_keras_cannot_rebuild"]
    assert result["status"] == "graded"
    for name, reason in (
        ("model_1", "a Dense layer that is not Keras' own (a class defined in the notebook)"),
        ("model_2", "the Functional model's outputs name 'nowhere', which is none of its layers"),
    ):
        architecture = checks(result)[f"{name}.architecture"]
        assert architecture["status"] == "error" and reason in architecture["message"]


def test_files_planted_to_break_the_reader_are_errors_of_the_submission_not_hangs(batch):
    results = batch["results"]
    assert results["fifo_manifest"]["status"] == "error"
    assert "manifest.json is not a regular file" in results["fifo_manifest"]["error"]
    architecture = checks(results["fifo_config"])["model_1.architecture"]
    assert architecture["status"] == "error" and "config.json is not a regular file" in architecture["message"]
    assert "nested too deeply" in results["deep_manifest"]["error"]
    assert "an integer of 401 digits" in results["huge_number"]["error"]


def test_untrusted_values_are_cut_at_the_boundary_and_said_to_be(batch):
    result = batch["results"]["cut_at_the_boundary"]
    assert "devices" not in result["environment"]
    assert result["models"]["model_1"]["history"]["loss"] == [None, None, None]
    assert len(result["models"]["model_1"]["history"]["accuracy"]) == 1000
    warnings = result["warnings"]
    assert any("has 100,000 values; the first 1000 are kept" in w for w in warnings)
    assert max(len(w) for w in warnings) < 3000 and any("more characters cut" in w for w in warnings)
    assert any("more than 2 MiB of output; the rest was dropped" in w for w in warnings)
    assert any("41 widget messages were dropped" in w for w in warnings)  # an opening and 40 messages
    assert (batch["out"] / "results.json").stat().st_size < 5 * 2**20
    assert max(page.stat().st_size for page in (batch["out"] / "submissions").glob("*.html")) < 2 * 2**20
    assert any("not finite numbers" in w for w in batch["results"]["a_nan_pixel"]["warnings"])


def test_a_notebook_cannot_fill_the_disk_or_starve_the_others_of_processes(batch):
    filler = batch["results"]["disk_filler"]
    assert any("No space left on device" in w for w in filler["warnings"]) or "wrote more than" in filler["error"]
    assert any("filled the space it may write" in w for w in filler["warnings"]) or filler["status"] == "error"
    bomb = batch["results"]["thread_bomb"]
    assert bomb["status"] == "graded"  # its own kernel survives its limit, and so do the others (above)
    segfault = batch["results"]["segfault"]
    assert segfault["status"] == "error" and "the kernel died while running cell" in segfault["error"]


def test_pages_keep_no_event_handler_or_script_link_and_never_collide(batch):
    page = (batch["out"] / "notebooks" / "script_in_outputs.html").read_text()
    assert not re.search(r"<[^>]*\son\w+=", page) and 'href="javascript:' not in page
    index = (batch["out"] / "index.html").read_text()
    links = set(re.findall(r'href="(submissions/x[ _]y[^"]*)"', index))
    assert len(links) == 2 and all((batch["out"] / link).is_file() for link in links)
