"""The kernel's ledger: what compile and fit recorded per model, the snapshots taken
of trained models, and the manifest that tells the grader about them."""

from __future__ import annotations

import json
import os
import random
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from grader.kernel.draws import DrawnRows, DrawTap
from grader.kernel.export import export_model
from grader.kernel.provenance import WeightProvenance
from grader.protocol.files import write_atomically
from grader.protocol.fingerprints import MAX_SAMPLE_BYTES, row_fingerprints
from grader.protocol.keras_objects import json_safe, keras_backend, notebook_namespace
from grader.protocol.manifest import MANIFEST, MANIFEST_FORMAT, HookSettings

# Rows of train_on_batch images remembered per model: beyond, they are counted, not fingerprinted.
MAX_BATCH_ROWS = 1_000_000
# Rows of each fit's images saved as they were passed to it: at least these, and as many more
# as SAMPLE_BYTES holds (all of a small table's rows; 334 MNIST images).
SAMPLE_ROWS = 32
SAMPLE_BYTES = MAX_SAMPLE_BYTES // 4
# Which rows beyond the first are sampled: the grader's own generator, seeded from the system's
# entropy, so that a notebook cannot tell where to put rows no sample falls on.
_SAMPLED = random.Random(os.urandom(32))
# A kernel forked from the zygote (``grader.kernel.zygote``) draws its own, not its siblings'.
os.register_at_fork(after_in_child=lambda: _SAMPLED.seed(os.urandom(32)))


def optimizer_parameters(model: Any) -> int | None:
    """Values the model's optimizer keeps (its slots, step count, learning rate)."""
    try:
        return int(sum(np.prod(variable.shape) for variable in model.optimizer.variables))
    except (AttributeError, TypeError, ValueError):
        return None


def optimizer_iterations(model: Any) -> int | None:
    """Training steps the model's optimizer has taken (Keras counts one per batch)."""
    try:
        return int(np.asarray(model.optimizer.iterations))
    except (AttributeError, TypeError, ValueError):
        return None


class Ledger:
    def __init__(self, settings: HookSettings) -> None:
        self.facts_dir = Path(settings.facts_dir)
        self.model_names = settings.model_names
        self.image_shape = settings.image_shape
        # Fingerprints of arrays already seen (x_train in every fit), by a checksum of their
        # bytes (an array changed in place is fingerprinted again): computed once per content.
        self.fingerprint_cache: dict[tuple[int, tuple[int, ...], str, int], str] = {}
        self.saved_fingerprints = 0
        # Models whose compile the grader accelerated (steps_per_execution), by id
        self.accelerated: set[int] = set()
        # id(model) -> fingerprints of the rows it got through train_on_batch
        self.batch_fingerprints: dict[int, list[np.ndarray]] = {}
        # id(model) -> the rows Keras drew for its training, over all its fits
        self.draws: dict[int, DrawnRows] = {}
        self.tap = DrawTap()
        # Keras' own training running now (fit, train_on_batch: their optimizer steps are theirs)
        self.keras_training = 0
        # id(variable) -> optimizer steps that updated it outside Keras' own training
        self.applied_outside: dict[int, int] = {}
        self.provenance = WeightProvenance(lambda: self.cell_position, self.name_of)
        # id(model) -> what compile/fit recorded; the models are kept alive so ids stay unique
        self.records: dict[int, dict[str, Any]] = {}
        self.models: dict[int, Any] = {}
        # Cells run since the preamble (the grader's first cell is position 0). Counted
        # here because IPython versions disagree on when execution_count moves on.
        self.cell_position = 0
        # id(model) -> (snapshot folder, position of the cell that took it)
        self.snapshots: dict[int, tuple[str, int]] = {}
        self.snapshot_serial = 0
        self.manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "environment": {},
            "models": {},
            # every model a fit trained, by a serial of its own, with the variables naming it
            "trained": {},
            "final_configs": {},
            "export_errors": [],
            "legacy": [],
            # what the notebook used that is not here, and what ran in its place
            "stand_ins": [],
        }

    def describe_environment(self) -> None:
        self.manifest["environment"] = keras_backend()

    def count_cells(self) -> None:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.events.register("pre_run_cell", self._count_cell)

    def _count_cell(self, info: Any = None) -> None:
        self.cell_position += 1

    def legacy(self, message: str) -> None:
        """Note a Keras 2 spelling that was adapted to run, and its modern form."""
        self._note("legacy", message)

    def stand_in(self, message: str) -> None:
        """Note a package the notebook imported that is not here, and what ran in its place."""
        self._note("stand_ins", message)

    def _note(self, key: str, message: str) -> None:
        if message not in self.manifest[key]:
            self.manifest[key].append(message)
            self.write_manifest()

    def record(self, model: Any) -> dict[str, Any]:
        """The record of ``model``'s compile, fit and train_on_batch calls, made on first use."""
        self.models[id(model)] = model
        self.provenance.state(model)
        return self.records.setdefault(
            id(model), {"compile": None, "fits": [], "batches": {"calls": 0, "rows": 0, "fingerprints": None}}
        )

    def save_fingerprints(self, images: Any, role: str) -> str | None:
        """Save the row fingerprints of ``images`` (any array-like) and return the file's name."""
        if images is None or isinstance(images, (str, bytes, dict)):
            return None
        try:
            array = np.ascontiguousarray(images)
            if array.ndim < 2 or array.dtype.kind not in "biuf":
                return None
            key = (len(array), array.shape, array.dtype.str, zlib.crc32(array.data.cast("B")))
            if key in self.fingerprint_cache:
                return self.fingerprint_cache[key]
            fingerprints = row_fingerprints(array, self.image_shape)
        except Exception:  # a generator, a dataset, a tensor NumPy cannot read: no fingerprints
            return None
        self.saved_fingerprints += 1
        name = f"fit-{self.saved_fingerprints}-{role}.npy"
        np.save(self.facts_dir / name, fingerprints, allow_pickle=False)
        self.fingerprint_cache[key] = name
        return name

    def save_sample(self, images: Any) -> tuple[str | None, str | None]:
        """Save rows of ``images`` as they were passed to fit, and their positions: the first
        ``SAMPLE_ROWS`` and as many more, drawn at random by a generator of the grader's own,
        as ``SAMPLE_BYTES`` holds (every row of a small table; of a tensor or a list, its first
        rows, which a copy of all of it would cost more than they tell). The grader finds out from them
        how the notebook prepared its rows (``grader.evaluation.preprocessing``), and whether test
        rows, or near-copies of them, are among them wherever they were put."""
        try:
            total = len(images)
            row_bytes = 4 * max(1, int(np.prod(np.shape(images)[1:])))
            count = max(SAMPLE_ROWS, SAMPLE_BYTES // row_bytes)
            if total <= count:
                positions = np.arange(total)
            elif isinstance(images, np.ndarray):
                drawn = _SAMPLED.sample(range(SAMPLE_ROWS, total), count - SAMPLE_ROWS)
                positions = np.array(sorted([*range(SAMPLE_ROWS), *drawn]))
            else:  # a tensor or a list: its first rows, rather than a copy of all of it
                positions = np.arange(count)
            rows = np.asarray(images[positions] if isinstance(images, np.ndarray) else images[:count], dtype=np.float32)
        except Exception:  # not an array of rows
            return None, None
        if rows.ndim < 2:
            return None, None
        self.saved_fingerprints += 1
        name = f"fit-{self.saved_fingerprints}-sample.npy"
        np.save(self.facts_dir / name, rows, allow_pickle=False)
        np.save(self.facts_dir / f"fit-{self.saved_fingerprints}-positions.npy", positions, allow_pickle=False)
        return name, f"fit-{self.saved_fingerprints}-positions.npy"

    def record_batch(self, model: Any, images: Any) -> None:
        """A ``train_on_batch`` call: counted, its rows fingerprinted."""
        batches = self.record(model)["batches"]
        batches["calls"] += 1
        try:
            array = np.asarray(images)
            batches["rows"] += len(array)
            if batches["rows"] <= MAX_BATCH_ROWS:
                self.batch_fingerprints.setdefault(id(model), []).append(row_fingerprints(array, self.image_shape))
        except Exception:  # not an array of rows: counted, not fingerprinted
            pass

    def drawn(self, model: Any) -> DrawnRows:
        """What Keras drew to train ``model``, over all its fits."""
        return self.draws.setdefault(id(model), DrawnRows(self.image_shape))

    def name_of(self, model: Any) -> str:
        """How the notebook names ``model``: a variable, else its Keras name."""
        variables = self._variables(model)
        return variables[0] if variables else str(getattr(model, "name", "a model"))[:60]

    def _save_drawn(self, model: Any) -> None:
        drawn = self.draws.get(id(model))
        if drawn is None:
            return
        fingerprints = drawn.distinct()
        self.saved_fingerprints += 1
        name = f"drawn-{self.saved_fingerprints}.npy"
        np.save(self.facts_dir / name, fingerprints, allow_pickle=False)
        self.record(model)["drawn"] = {
            "rows": drawn.rows,
            "fingerprinted": drawn.fingerprinted,
            "unread_batches": drawn.unread_batches,
            "fingerprints": name,
        }

    def _save_batch_fingerprints(self, model: Any) -> None:
        found = self.batch_fingerprints.get(id(model))
        if found:
            self.saved_fingerprints += 1
            name = f"batches-{self.saved_fingerprints}.npy"
            np.save(self.facts_dir / name, np.concatenate(found), allow_pickle=False)
            self.record(model)["batches"]["fingerprints"] = name

    def snapshot(self, model: Any) -> None:
        """Export config and weights now (in place of the model's earlier snapshot), list the
        model among those trained, and bind the spec names that refer to it."""
        try:
            self._save_batch_fingerprints(model)
            self._save_drawn(model)
            record = self.record(model)
            record["iterations_at_snapshot"] = optimizer_iterations(model)
            record["weight_events"] = self.provenance.after_training(model)
            earlier = self.snapshots.get(id(model))
            self.snapshots[id(model)] = (self._export(model, origin="fit"), self.cell_position)
            if earlier is not None:  # nothing refers to it any more; a big model's copies would fill the folder
                shutil.rmtree(self.facts_dir / earlier[0], ignore_errors=True)
            entry = self._entry(model, *self.snapshots[id(model)], origin="fit")
            self.manifest["trained"][str(self._serial(model))] = {**entry, "variables": self._variables(model)}
            stale = [
                name for name, bound in self.manifest["models"].items() if earlier and bound["snapshot"] == earlier[0]
            ]
            for name in {*self._names_bound_to(model), *stale}:
                self.manifest["models"][name] = entry
        except Exception as error:  # never break the student's fit because of an export
            names = ", ".join(self._names_bound_to(model)) or "a model"
            self.manifest["export_errors"].append(f"{names}: {type(error).__name__}: {error}")
        self.write_manifest()

    def _serial(self, model: Any) -> int:
        """A number of the model's own, in the order models were first recorded."""
        return list(self.models).index(id(model)) + 1

    def _variables(self, model: Any) -> list[str]:
        """The notebook's variables that refer to ``model`` now (IPython's ``_``, ``_1`` left out)."""
        return [name for name, value in notebook_namespace().items() if value is model and not name.startswith("_")]

    def _names_bound_to(self, model: Any) -> list[str]:
        namespace = notebook_namespace()
        return [name for name in self.model_names if namespace.get(name) is model]

    def _export(self, model: Any, origin: str) -> str:
        self.snapshot_serial += 1
        folder = f"snapshot-{self.snapshot_serial}-{origin}"
        export_model(model, self.facts_dir / folder)
        return folder

    def steps_outside_keras(self, model: Any) -> int:
        """Optimizer steps outside Keras' training that updated ``model``'s trainable weights
        (a step traced in a ``tf.function`` counts once)."""
        try:
            return max((self.applied_outside.get(id(variable), 0) for variable in model.trainable_variables), default=0)
        except Exception:  # weights that cannot be listed
            return 0

    def _entry(self, model: Any, snapshot: str, cell_position: int, origin: str) -> dict[str, Any]:
        """What the manifest says of a model: where it was exported, and how it was trained."""
        record = self.record(model)
        return {
            "snapshot": snapshot,
            "origin": origin,
            "cell_position": cell_position,
            "compile": record["compile"],
            "fits": record["fits"],
            "batches": record["batches"],
            "drawn": record.get("drawn"),
            # Weights put into it that its training did not produce: before its export, and after
            "weight_events": record.get("weight_events", []),
            "weight_events_after": record.get("weight_events_after", []),
            "iterations_at_snapshot": record.get("iterations_at_snapshot"),
            "optimizer_steps_outside_fit": self.steps_outside_keras(model),
            "iterations_at_end": optimizer_iterations(model),
            "optimizer_parameters": optimizer_parameters(model),
        }

    def finish(self) -> None:
        import keras

        namespace = notebook_namespace()
        for model_id, (snapshot, position) in self.snapshots.items():
            model = self.models[model_id]
            try:
                self._save_batch_fingerprints(model)
                self._save_drawn(model)
                record = self.record(model)
                record["weight_events_after"] = self.provenance.after_training(model)[len(record["weight_events"]) :]
                entry = self._entry(model, snapshot, position, origin="fit")
                self.manifest["trained"][str(self._serial(model))] = {**entry, "variables": self._variables(model)}
            except Exception as error:
                self.manifest["export_errors"].append(f"a trained model: {type(error).__name__}: {error}")
        for name in self.model_names:
            model = namespace.get(name)
            if not isinstance(model, keras.Model):
                continue
            try:
                self._save_batch_fingerprints(model)
                if id(model) in self.snapshots:
                    self.manifest["models"][name] = self._entry(model, *self.snapshots[id(model)], origin="fit")
                    self.manifest["final_configs"][name] = json_safe(model.get_config())
                elif name not in self.manifest["models"]:
                    self._save_drawn(model)
                    record = self.record(model)
                    record["iterations_at_snapshot"] = optimizer_iterations(model)
                    record["weight_events"] = self.provenance.after_training(model)
                    snapshot = self._export(model, origin="end")
                    self.manifest["models"][name] = self._entry(model, snapshot, self.cell_position, origin="end")
            except Exception as error:
                self.manifest["export_errors"].append(f"{name}: {type(error).__name__}: {error}")
        self.write_manifest()

    def write_manifest(self) -> None:
        write_atomically(self.facts_dir / MANIFEST, json.dumps(self.manifest, default=repr))
