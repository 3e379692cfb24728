"""The instrumentation that runs inside the student's kernel, before the first cell.

It serves the grader's data set to ``keras.datasets.<name>.load_data()`` (when the exercise
loads it so; a data file is placed in the notebook's folder by the sandbox), lets
Keras 2 spellings run (and ``tf.keras`` where TensorFlow is not installed), wraps ``Model.compile``, ``Model.fit`` and
``Model.train_on_batch`` to record what the notebook asked for and did, fingerprints the batches Keras draws for
training (``draws``), records weights put into a model otherwise than by its training (``provenance``), and exports
each model (config as JSON, weights as ``.npy`` arrays) as soon as its ``fit`` returns, so that a later crash, hang
or dead kernel cannot take a trained model away. ``finish()`` runs after the
last cell and exports the models that were never fitted.

This package imports nothing of the grader but ``grader.protocol``. Everything
it writes is untrusted by the grader: the student's code runs in this process
and could change any of it. The grade comes from the grader re-evaluating the
exported weights in a process of its own.
"""

from __future__ import annotations

from typing import Any

from grader.kernel.compat import adapt_colab, adapt_keras2, stand_in_for_tensorflow
from grader.kernel.datasets import serve_dataset
from grader.kernel.ledger import Ledger
from grader.kernel.provenance import wrap_weight_changes
from grader.kernel.training import wrap_compile, wrap_fit, wrap_optimizer_steps, wrap_train_on_batch
from grader.protocol.manifest import HookSettings

_ledger: Ledger | None = None


def install(settings: dict[str, Any]) -> None:
    """Set up the instrumentation; called by the grader's preamble cell."""
    import keras
    from keras.src.trainers import data_adapters

    global _ledger
    hook_settings = HookSettings.from_dict(settings)
    ledger = Ledger(hook_settings)
    ledger.describe_environment()
    ledger.count_cells()
    if hook_settings.keras_dataset:
        serve_dataset(hook_settings.keras_dataset, hook_settings.data_path)
    wrap_compile(keras.Model, ledger, hook_settings)
    wrap_fit(keras.Model, ledger, hook_settings)
    wrap_train_on_batch(keras.Model, ledger)
    wrap_optimizer_steps(keras.optimizers.Optimizer, ledger)
    ledger.tap.install(data_adapters)
    wrap_weight_changes(keras, ledger.provenance)
    adapt_keras2(keras, ledger.legacy)
    adapt_colab(ledger.legacy)
    stand_in_for_tensorflow(keras, ledger.stand_in)
    ledger.write_manifest()
    _ledger = ledger


def finish() -> None:
    """Export the models never fitted and note the final state; the grader's last cell."""
    if _ledger is not None:
        _ledger.finish()
