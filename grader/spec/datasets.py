"""Find, fetch and validate the data set the grader serves to notebooks.

Order: ``--data PATH``, then the ``GRADER_MNIST`` environment variable, then
Keras' own cache (``~/.keras/datasets/<name>.npz``), then a download into that
cache, checked against the spec's file hash. No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.errors import DataError
from grader.protocol.files import atomic_output
from grader.spec.exercise import DataSpec

DATA_ENV = "GRADER_MNIST"
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Dataset:
    path: Path
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def keras_cache_path(spec: DataSpec) -> Path:
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return keras_home / "datasets" / f"{spec.keras_dataset}.npz"


def locate_data(spec: DataSpec, explicit: Path | None = None, allow_download: bool = True) -> Path:
    """The path of the data file to use, downloading it into Keras' cache if needed."""
    if explicit is not None:
        if not explicit.is_file():
            raise DataError(f"--data {explicit}: no such file. Pass the path of an {spec.keras_dataset}.npz.")
        return explicit
    from_env = os.environ.get(DATA_ENV)
    if from_env:
        if not Path(from_env).is_file():
            raise DataError(
                f"{DATA_ENV}={from_env}: no such file. Point it at an {spec.keras_dataset}.npz or unset it."
            )
        return Path(from_env)
    cached = keras_cache_path(spec)
    if cached.is_file():
        return cached
    if allow_download and spec.url:
        return _download(spec, cached)
    raise DataError(_missing_data_message(spec, cached, reason="no copy was found"))


def _missing_data_message(spec: DataSpec, cached: Path, reason: str) -> str:
    return (
        f"The {spec.keras_dataset} data set is needed and {reason}. Either pass "
        f"--data PATH/TO/{spec.keras_dataset}.npz (or set {DATA_ENV}=PATH), or let the grader "
        f"download it into Keras' cache at {cached} (needs network access to {spec.url})."
    )


def _download(spec: DataSpec, target: Path) -> Path:
    assert spec.url is not None
    digest = hashlib.sha256()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(spec.url, timeout=60) as response, atomic_output(target) as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            if spec.file_sha256 and digest.hexdigest() != spec.file_sha256:
                raise DataError(
                    f"the file downloaded from {spec.url} has sha256 {digest.hexdigest()}, not {spec.file_sha256}."
                )
    except OSError as error:
        raise DataError(_missing_data_message(spec, target, reason=f"the download failed ({error})")) from None
    return target


def load_dataset(path: Path, spec: DataSpec) -> Dataset:
    """Load and check the four arrays; raise ``DataError`` saying what differs."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ARRAY_KEYS if key not in archive.files]
            if missing:
                raise DataError(
                    f"{path} lacks the arrays {missing}; it needs {list(ARRAY_KEYS)} as Keras' load_data() gives."
                )
            arrays = {key: archive[key] for key in ARRAY_KEYS}
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error}).") from None
    expected = {
        "x_train": (spec.train_samples, *spec.image_shape),
        "y_train": (spec.train_samples,),
        "x_test": (spec.test_samples, *spec.image_shape),
        "y_test": (spec.test_samples,),
    }
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise DataError(
                f"{path}: {key} has shape {arrays[key].shape}, expected {shape}. Is this the full data set?"
            )
    return Dataset(path=path, **arrays)


def prepare_images(images: np.ndarray, spec: DataSpec) -> np.ndarray:
    """The exercise's preprocessing (``DataSpec.preprocessing``)."""
    return spec.preprocessing.apply(images)
