"""Find the notebooks to grade among the paths an instructor names."""

from __future__ import annotations

from pathlib import Path

from grader.errors import GraderError


def discover_submissions(paths: list[Path]) -> list[Path]:
    """Every ``.ipynb`` in the given folders (sorted), plus the files named explicitly."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.glob("*.ipynb") if p.is_file()))
        elif path.exists():
            found.append(path)
        else:
            raise GraderError(f"{path}: no such file or folder. Name a folder of notebooks or .ipynb files.")
    if not found:
        names = ", ".join(str(p) for p in paths)
        raise GraderError(f"nothing to grade: no .ipynb files in {names}.")
    return found
