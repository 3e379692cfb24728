"""The shipped exercises, copied with their data into a test's own folder."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[2] / "reference"


def write_reference_data(folder: Path) -> None:
    """The data files `reference/make_data.py` writes, into ``folder``."""
    runpy.run_path(str(REFERENCE / "make_data.py"))["main"](folder)


def shipped_exercise(stem: str, folder: Path) -> Path:
    """``reference/<stem>.toml`` and its files (calibration, solution, handout), copied into
    ``folder`` with the data files; the copied spec's path."""
    for path in REFERENCE.glob(f"{stem}*"):
        if path.suffix in (".toml", ".json", ".ipynb"):
            shutil.copy(path, folder)
    write_reference_data(folder)
    return folder / f"{stem}.toml"
