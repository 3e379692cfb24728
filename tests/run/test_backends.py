"""The backend is chosen on the host without importing it, and each process gets the variables
that make Keras run on it and share a GPU. No kernel, no TensorFlow."""

import sys

import pytest

import grader.run.backends
from grader.errors import GraderError
from grader.run.backends import Backend, choose_backend


@pytest.fixture
def installed(monkeypatch):
    def only(*names: str) -> None:
        monkeypatch.setattr(grader.run.backends, "installed_backends", lambda: list(names))

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setattr(grader.run.backends, "gpu_count", lambda: 0)
    return only


def test_tensorflow_is_the_default_where_installed_else_the_one_installed(installed, monkeypatch):
    installed("tensorflow", "jax")
    assert choose_backend() == Backend("tensorflow", "cpu")
    installed("jax", "torch")
    assert choose_backend() == Backend("jax", "cpu")
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert choose_backend() == Backend("torch", "cpu")  # Keras' own variable, as Keras would read it
    assert choose_backend("jax").key == "jax/cpu"  # --backend wins
    monkeypatch.setattr(grader.run.backends, "gpu_count", lambda: 2)
    assert choose_backend("jax").key == "jax/gpu"


def test_a_backend_not_installed_names_what_to_install(installed, monkeypatch):
    installed("tensorflow")
    with pytest.raises(GraderError, match=r"'torch' is not installed here \(installed: tensorflow\).*\[torch\]"):
        choose_backend("torch")
    monkeypatch.setenv("KERAS_BACKEND", "mxnet")
    with pytest.raises(GraderError, match="'mxnet' \\(from KERAS_BACKEND\\) is not one the grader supports"):
        choose_backend()
    installed()
    monkeypatch.delenv("KERAS_BACKEND")
    with pytest.raises(GraderError, match="no Keras backend is installed"):
        choose_backend()


def test_each_backend_shares_a_gpu_its_own_way_and_a_cpu_needs_only_the_backend():
    assert Backend("jax", "cpu").environment(4) == {"KERAS_BACKEND": "jax"}
    assert Backend("tensorflow", "gpu").environment(4) == {
        "KERAS_BACKEND": "tensorflow",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    }
    jax = Backend("jax", "gpu").environment(4)
    assert jax["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert jax["XLA_PYTHON_CLIENT_MEM_FRACTION"] == jax["XLA_CLIENT_MEM_FRACTION"] == "0.225"
    assert Backend("torch", "gpu").environment(4)["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"


def test_torch_trains_as_written_the_others_several_batches_per_call():
    # Keras 3.15 refuses steps_per_execution > 1 on PyTorch.
    assert Backend("torch").steps_per_execution == 1
    assert Backend("jax").steps_per_execution == Backend("tensorflow").steps_per_execution == 32


def test_the_installed_backends_are_found_without_importing_them():
    before = set(sys.modules)
    found = grader.run.backends.installed_backends()
    assert set(found) <= {"tensorflow", "jax", "torch"}
    assert not {"tensorflow", "jax", "torch"} & (set(sys.modules) - before)
