"""Find, fetch, validate and write the data set the grader serves to notebooks.

Order: ``--data PATH``, then, for a spec whose data is a file beside it, that file (checked
against the spec's hash); else the ``GRADER_MNIST`` environment variable, then Keras' own
cache (``~/.keras/datasets/<name>.npz``), then a download into that cache, checked against
the spec's file hash. No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
import zipfile
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
            raise DataError(f"--data {explicit}: no such file. Pass the path of {spec.name}.")
        return checked_data_file(spec, explicit) if spec.file is not None else explicit
    if spec.file is not None:
        return checked_data_file(spec, Path(spec.file))
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


def file_digest(path: Path) -> str:
    """The sha256 of the file at ``path``, read in chunks."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def checked_data_file(spec: DataSpec, path: Path) -> Path:
    """``path``, the spec's data file (beside it, or named by --data), present and with the
    bytes the spec's hash says."""
    if not path.is_file():
        raise DataError(
            f"the spec's data file {path} is missing. It belongs beside the spec (`grader new` puts it there); "
            "copy it there, or pass --data PATH."
        )
    if spec.file_sha256 and (actual := file_digest(path)) != spec.file_sha256:
        raise DataError(
            f"the data file {path} has sha256 {actual}, the spec expects {spec.file_sha256}: it is not the file "
            "the exercise was calibrated on. Put the original back, or run `grader new` again on the new data."
        )
    return path


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
    for key in ("y_train", "y_test"):
        arrays[key] = targets(arrays[key], spec.task, spec.first_class)
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


def load_private_test(path: Path, spec: DataSpec) -> tuple[np.ndarray, np.ndarray]:
    """The private test set's rows and labels (``x_test`` and ``y_test`` in an ``.npz``), checked
    against the data set's row shape; ``DataError`` says what differs."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x_test" not in archive.files or "y_test" not in archive.files:
                raise DataError(f"the private test set {path} holds {archive.files}; it needs x_test and y_test")
            rows, labels = archive["x_test"], targets(archive["y_test"], spec.task, spec.first_class)
    except (OSError, ValueError) as error:
        raise DataError(f"the private test set {path} is not a readable .npz file ({error}).") from None
    if rows.shape[1:] != tuple(spec.image_shape) or labels.shape != (len(rows),) or not len(rows):
        raise DataError(
            f"the private test set {path}: x_test has shape {rows.shape} and y_test {labels.shape}; expected rows of "
            f"shape {tuple(spec.image_shape)} and one label per row"
        )
    return rows, labels


def targets(labels: np.ndarray, task: str, first_class: int = 0) -> np.ndarray:
    """A data file's labels as the grader compares with: a number per row. A classifier's
    one-hot rows become their class; classes counted from ``first_class`` (1 in some data sets)
    are counted from 0, as a model's outputs are; a column of one value per row is that value."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if task == "classification" and labels.ndim == 2 and labels.size and _one_hot(labels):
        return np.asarray(labels.argmax(axis=1))
    if task == "classification" and first_class and labels.ndim == 1 and labels.dtype.kind in "iu":
        return labels.astype("int64") - first_class
    return labels


def _one_hot(labels: np.ndarray) -> bool:
    """Whether every row holds one 1 and zeros besides."""
    return bool(((labels == 0) | (labels == 1)).all() and (labels.sum(axis=1) == 1).all())


def prepare_images(images: np.ndarray, spec: DataSpec) -> np.ndarray:
    """The exercise's preprocessing (``DataSpec.preprocessing``)."""
    return spec.preprocessing.apply(images)


def write_keras_layout(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """Write ``x_train, y_train, x_test, y_test`` as an ``.npz`` file in Keras' layout, the same
    bytes for the same arrays (numpy's own ``savez`` stamps each member with the time), and
    return its sha256."""
    missing = [key for key in ARRAY_KEYS if key not in arrays]
    if missing:
        raise DataError(f"the arrays {missing} are missing; a file in Keras' layout holds {list(ARRAY_KEYS)}")
    with atomic_output(path) as out, zipfile.ZipFile(out, "w") as archive:
        for key in ARRAY_KEYS:
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            stamp = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(stamp, member.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return file_digest(path)
