"""Which data a solution notebook trains on: a ``keras.datasets`` loader it calls, or a data
file it opens that sits beside it (``np.load("digits.npz")``, ``pd.read_csv(...)``). Read from
the notebook's code and the solution's folder, before anything runs. No TensorFlow."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nbformat import NotebookNode

from grader.errors import SpecError
from grader.spec.datasets import ARRAY_KEYS

# The loaders of keras.datasets whose file is one .npz in Keras' layout: where Keras downloads
# it from, and the sha256 Keras checks it against (keras/src/datasets/mnist.py).
KERAS_NPZ_LOADERS = {
    "mnist": (
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
        "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    )
}
KERAS_LOADERS = (
    *KERAS_NPZ_LOADERS,
    "fashion_mnist", "cifar10", "cifar100", "imdb", "reuters", "boston_housing", "california_housing",
)  # fmt: skip
# The files a notebook reads data from; a saved model, a figure or a notebook named in the code is no data.
DATA_SUFFIXES = (".npz", ".npy", ".csv", ".tsv", ".txt", ".json", ".parquet", ".feather", ".pkl", ".pickle", ".xlsx")
LOADER_CALL = re.compile(r"\b(" + "|".join(KERAS_LOADERS) + r")\s*\.\s*load_data\s*\(")
QUOTED = re.compile(r"""(?P<quote>["'])(?P<text>[^"'\n]{1,200})(?P=quote)""")


@dataclass(frozen=True)
class DataSource:
    """A loader's name (``keras_dataset``) or a data file's path (``file``); a loader's download
    and the sha256 Keras checks it against."""

    keras_dataset: str = ""
    file: Path | None = None
    url: str | None = None
    download_sha256: str | None = None

    def describe(self) -> str:
        loader = f"keras.datasets.{self.keras_dataset}" if self.keras_dataset else ""
        file = f"the data file {self.file.name}" if self.file else ""
        return f"{loader}, served from {file}" if loader and file else loader or file


def find_data_source(solution: NotebookNode, folder: Path, data_path: Path | None = None) -> DataSource:
    """The data ``solution`` (a notebook in ``folder``) trains on; ``data_path``: the arrays,
    in Keras' layout, of a loader whose own file is not one .npz. ``SpecError`` says what to
    do when there is none the grader can serve, or more than one."""
    code = "\n".join(str(cell.source) for cell in solution.cells if cell.cell_type == "code")
    files = sorted({folder / Path(match["text"]).name for match in QUOTED.finditer(code)})
    opened = [path for path in files if path.is_file() and path.suffix.lower() in DATA_SUFFIXES]
    if len(opened) > 1:
        names = ", ".join(path.name for path in opened)
        raise SpecError(
            f"the solution opens several files beside it ({names}); the grader serves one data file in Keras' "
            "layout. Put the arrays into one .npz (x_train, y_train, x_test, y_test) and open that."
        )
    if opened:
        if data_path is not None:
            raise SpecError(
                f"--data: the solution opens {opened[0].name} beside it: that is its data; leave --data out"
            )
        return DataSource(file=_keras_layout(opened[0]))
    loaders = sorted(set(LOADER_CALL.findall(code)))
    if len(loaders) > 1:
        raise SpecError(f"the solution calls several keras.datasets loaders ({', '.join(loaders)}); use one")
    if loaders and loaders[0] in KERAS_NPZ_LOADERS:
        url, digest = KERAS_NPZ_LOADERS[loaders[0]]
        return DataSource(keras_dataset=loaders[0], url=url, download_sha256=digest)
    if loaders and data_path is not None:
        # Served to the loader from a copy beside the spec: the exercise carries its data.
        return DataSource(keras_dataset=loaders[0], file=_keras_layout(data_path))
    if loaders:
        raise SpecError(
            f"the solution calls keras.datasets.{loaders[0]}.load_data(), whose file Keras keeps otherwise than "
            "as one .npz: pass --data FILE.npz holding its arrays in Keras' layout (x_train, y_train, x_test, "
            "y_test; one label per row). The grader serves them to that loader, from a copy beside the spec."
        )
    raise SpecError(
        "found no data in the solution: it neither calls a keras.datasets loader nor opens a file beside it "
        f"(looked for quoted file names in its code, in {folder}). Put the data file beside the solution."
    )


def _keras_layout(path: Path) -> Path:
    """``path``, if it is an .npz holding Keras' four arrays; else say how to make it one."""
    how = (
        f"The grader serves a data file in Keras' layout: an .npz holding {', '.join(ARRAY_KEYS)} (the training "
        "and the test rows). Write the arrays so with numpy.savez and have the solution open that file."
    )
    if path.suffix != ".npz":
        raise SpecError(f"the solution opens {path.name}, which is not an .npz file. {how}")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {Path(name).stem for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile) as error:
        raise SpecError(f"the solution opens {path.name}, which cannot be read as .npz ({error}). {how}") from None
    missing = [key for key in ARRAY_KEYS if key not in members]
    if missing:
        raise SpecError(
            f"{path.name} lacks {', '.join(missing)}, so which rows are for training and which for testing "
            f"is not known. {how}"
        )
    return path
