"""What crosses the boundary: the settings handed to the kernel, the cells that install
and finish the instrumentation, and the names of the files the kernel exports.

The kernel writes, into its facts folder:
- ``manifest.json``: per model name, the snapshot folder it was exported to, its compile
  and fit records, the rows Keras drew to train it (``drawn``), the weights put into it that
  its own training did not produce (``weight_events``: before its export; ``weight_events_after``:
  after it, not graded), and the notebook's environment, export errors and Keras 2 spellings;
- ``snapshot-N-ORIGIN/``: a model's ``config.json`` (``model.get_config()``) and its
  weights as ``wNNN.npy`` plain arrays;
- ``fit-N-ROLE.npy``: row fingerprints of the images a ``fit`` call received;
- ``batches-N.npy``: row fingerprints of the images ``train_on_batch`` received;
- ``drawn-N.npy``: the distinct fingerprints of the rows Keras drew for a model's training
  steps, over all its fits (one row in 16 of each batch).
Everything in that folder is untrusted: the student's code runs in the process that wrote it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
SNAPSHOT_CONFIG = "config.json"
# The package the preamble imports inside the kernel: named here, never imported by the host.
KERNEL_PACKAGE = "grader.kernel"


@dataclass(frozen=True)
class HookSettings:
    """What the instrumentation needs: where to export, what data to serve, how to run."""

    facts_dir: str
    data_path: str
    keras_dataset: str
    # The data set's image shape: the canvas row fingerprints are placed on
    image_shape: tuple[int, ...]
    model_names: tuple[str, ...]
    quick: bool
    quick_train_rows: int
    quick_validation_rows: int
    # 0: run every compile and fit exactly as written
    steps_per_execution: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model_names": list(self.model_names), "image_shape": list(self.image_shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HookSettings:
        return cls(**{**data, "model_names": tuple(data["model_names"]), "image_shape": tuple(data["image_shape"])})


def preamble(settings: HookSettings) -> str:
    """The code of the cell that runs before the student's first cell."""
    return f"__import__({KERNEL_PACKAGE!r}, fromlist=['install']).install({settings.to_dict()!r})"


# The code of the cell that runs after the student's last cell: export the models never fitted.
FINALE = f"__import__({KERNEL_PACKAGE!r}, fromlist=['finish']).finish()"
