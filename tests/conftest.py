"""Shared fixtures. Tests marked ``kernel`` start a real Jupyter kernel with
TensorFlow and need the full data set, found through ``GRADER_MNIST``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from grader.spec import DEFAULT_SPEC, Spec, load_spec

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="session")
def spec() -> Spec:
    return load_spec(DEFAULT_SPEC)


def keras_config(name: str) -> dict[str, Any]:
    """A ``model.get_config()`` saved from Keras 3 (see tests/fixtures/configs)."""
    return json.loads((FIXTURES / "configs" / f"{name}.json").read_text())


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    value = os.environ.get("GRADER_MNIST")
    if not value or not Path(value).is_file():
        pytest.skip("needs the full MNIST file: set GRADER_MNIST=/path/to/mnist.npz (.ci/run does)")
    return Path(value)
