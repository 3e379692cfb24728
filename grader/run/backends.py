"""The Keras backend a notebook trains on (TensorFlow, JAX or PyTorch) and the device kind,
chosen on the host without importing any of them; and the environment that makes a kernel,
the evaluator and the tools run on it.

Keras reads ``KERAS_BACKEND`` once, when it is first imported: each process runs one backend.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.errors import GraderError

BackendName = Literal["tensorflow", "jax", "torch"]
# In the order the default prefers them: TensorFlow where installed, as the course notebook assumes.
BACKENDS: tuple[BackendName, ...] = ("tensorflow", "jax", "torch")
# The pip extra that installs each (TensorFlow is in the default install).
INSTALL_HINT = {
    "tensorflow": "pip install keras-exercise-grader",
    "jax": "pip install 'keras-exercise-grader[jax]'",
    "torch": "pip install 'keras-exercise-grader[torch]'",
}
# Batches per compiled call when the grader accelerates training, measured per backend on a CPU
# (docs/figures.md, Speed). Keras refuses more than 1 on PyTorch (3.15), so PyTorch trains as written.
STEPS_PER_EXECUTION: dict[str, int] = {"tensorflow": 32, "jax": 32, "torch": 1}
# The share of a GPU's memory all the notebooks on it may take together; the rest is the driver's.
GPU_MEMORY_SHARE = 0.9


def gpu_count() -> int:
    """NVIDIA GPUs on this machine, counted by their device nodes (no CUDA needed)."""
    return sum(1 for node in Path("/dev").glob("nvidia[0-9]*"))


def installed_backends() -> list[BackendName]:
    """The backends whose package is installed here, found without importing it."""
    return [name for name in BACKENDS if importlib.util.find_spec(name) is not None]


@dataclass(frozen=True)
class Backend:
    """A Keras backend on a kind of device: what a calibration and a result are keyed by."""

    name: BackendName
    device: Literal["cpu", "gpu"] = "cpu"

    @property
    def key(self) -> str:
        return f"{self.name}/{self.device}"

    @property
    def steps_per_execution(self) -> int:
        return STEPS_PER_EXECUTION[self.name]

    def environment(self, notebooks_per_gpu: int = 1) -> dict[str, str]:
        """The variables a process needs to run Keras on this backend, sharing each GPU with
        ``notebooks_per_gpu - 1`` others: none may take a card's memory up front."""
        variables: dict[str, str] = {"KERAS_BACKEND": self.name}
        if self.device != "gpu":
            return variables
        share = f"{GPU_MEMORY_SHARE / max(1, notebooks_per_gpu):.3f}"
        if self.name == "tensorflow":
            variables["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        elif self.name == "jax":
            # JAX takes 75% of the card at its first operation unless told otherwise; the
            # fraction caps what one notebook may grow to (JAX renamed the variable: both are set).
            variables |= {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "XLA_PYTHON_CLIENT_MEM_FRACTION": share,
                          "XLA_CLIENT_MEM_FRACTION": share}  # fmt: skip
        else:
            # PyTorch's caching allocator takes memory as needed; expandable segments fragment less.
            variables["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
        return variables


def choose_backend(requested: str | None = None) -> Backend:
    """The backend asked for, else ``$KERAS_BACKEND``, else TensorFlow where installed, else the
    first installed; on a GPU when this machine has one. Raises ``GraderError`` saying what to
    install when the backend is not installed."""
    installed = installed_backends()
    name = requested or os.environ.get("KERAS_BACKEND") or (installed[0] if installed else None)
    if name is None:
        raise GraderError(
            "no Keras backend is installed here (TensorFlow, JAX or PyTorch): "
            f"{INSTALL_HINT['tensorflow']}, or {INSTALL_HINT['jax']}"
        )
    if name not in BACKENDS:
        raise GraderError(
            f"the Keras backend {name!r} (from {'--backend' if requested else 'KERAS_BACKEND'}) is not one the "
            f"grader supports; choose one of {', '.join(BACKENDS)}"
        )
    if name not in installed:
        raise GraderError(
            f"the Keras backend {name!r} is not installed here (installed: {', '.join(installed) or 'none'}). "
            f"Install it ({INSTALL_HINT[name]}) or choose another with --backend."
        )
    return Backend(name, "gpu" if gpu_count() else "cpu")


def use_backend_in_this_process(backend: Backend) -> None:
    """Make Keras, when this process imports it, run on ``backend`` (the tools train here).
    Raises ``GraderError`` when Keras is already loaded on another one."""
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != backend.name:
        raise GraderError(
            f"Keras is already loaded in this process on {loaded.backend.backend()}, not {backend.name}: "
            "run the command in a fresh process"
        )
    os.environ["KERAS_BACKEND"] = backend.name
