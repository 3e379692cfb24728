"""Similarity across a class: which notebooks share code beyond what the exercise gives
everyone (the handout and the model solution's code), pair by pair, with the shared code.

The comparison is copydetect's (k-gram fingerprints of tokens, as MOSS does), on
each notebook's code cells with names, strings and numbers' spelling left out of the
tokens; code the handout or the solution holds does not count. Chosen on measured quality
and speed (docs/figures.md, Similarity of a synthetic class).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from grader.protocol.text import REPLACEMENT, encodable

# k-gram length and winnowing window of copydetect's fingerprints (the measurements in docs/figures.md). A
# window of 1 keeps every k-gram: copydetect hashes them with Python's hash(), which differs
# from one process to the next, so a wider window would pick other k-grams, and give other
# figures, on every run.
NOISE = 25
WINDOW = 1
DEFAULT_THRESHOLD = 0.95
START, END = "\x00", "\x01"
# Code compared per notebook: the exercise's is a few kilobytes; a pair of 1 MB notebooks takes
# copydetect 14 s, and a class has pairs by the hundred (docs/security.md).
MAX_CODE_CHARS = 200_000


@dataclass(frozen=True)
class SimilarPair:
    """Two notebooks, the share of each one's own code found in the other, and each one's
    code with the shared parts marked (HTML, escaped). Their similarity is the smaller share:
    how much of *both* is shared, so that a short notebook is not a copy of a long one for
    holding the exercise's few lines that everyone writes alike."""

    first: str
    second: str
    shares: tuple[float, float]
    first_code: str
    second_code: str

    @property
    def similarity(self) -> float:
        return min(self.shares)


@dataclass(frozen=True)
class ClassSimilarity:
    """The pairs of a class found similar, out of how many notebooks, at which threshold."""

    compared: int
    threshold: float
    pairs: tuple[SimilarPair, ...]


def notebook_code(path: Path) -> str:
    """A notebook's code cells, joined; lines of IPython magics and shell commands left out; the
    characters that mark shared code replaced, and cut at ``MAX_CODE_CHARS``."""
    try:
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    except Exception:  # not a notebook: nothing to compare
        return ""
    lines: list[str] = []
    for cell in notebook.cells:
        if cell.get("cell_type") == "code":
            lines.extend(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
    code = encodable("\n".join(lines)[:MAX_CODE_CHARS])
    # A student's own START or END would open or close a <mark> of the page
    return code.replace(START, REPLACEMENT).replace(END, REPLACEMENT)


def class_similarity(
    notebooks: Mapping[str, Path], expected: str, threshold: float = DEFAULT_THRESHOLD
) -> ClassSimilarity:
    """Every pair of ``notebooks`` (id -> path) whose similarity reaches ``threshold``, most
    similar first; ``expected`` is the code everyone is given or expected to write."""
    from copydetect import CodeFingerprint, compare_files
    from copydetect.utils import highlight_overlap

    given = _fingerprint(CodeFingerprint, "expected", expected, np.array([], dtype=np.int64))
    boilerplate = np.unique(np.array(list(given.hashes), dtype=np.int64))
    codes = {name: notebook_code(path) for name, path in notebooks.items()}
    fingerprints = {
        name: _fingerprint(CodeFingerprint, name, code, boilerplate) for name, code in codes.items() if code.strip()
    }
    pairs = []
    for first, second in itertools.combinations(sorted(fingerprints), 2):
        _, shares, (first_slices, second_slices) = compare_files(fingerprints[first], fingerprints[second])
        if min(shares) >= threshold and min(shares) > 0:  # nothing shared is never a pair
            pairs.append(
                SimilarPair(
                    first,
                    second,
                    (round(float(shares[0]), 3), round(float(shares[1]), 3)),
                    _marked(highlight_overlap, fingerprints[first].raw_code, first_slices),
                    _marked(highlight_overlap, fingerprints[second].raw_code, second_slices),
                )
            )
    return ClassSimilarity(len(notebooks), threshold, tuple(sorted(pairs, key=lambda pair: -pair.similarity)))


def _fingerprint(kind: Any, name: str, code: str, boilerplate: np.ndarray) -> Any:
    return kind(f"{name}.py", NOISE, WINDOW, boilerplate=boilerplate, fp=io.StringIO(code), language="python")


def _marked(highlight: Any, code: str, slices: np.ndarray) -> str:
    """``code`` escaped for HTML, the shared parts in ``<mark>``."""
    marked = highlight(code, slices, START, END)[0] if slices.ndim == 2 and slices.shape[1] else code
    return escape(marked).replace(START, "<mark>").replace(END, "</mark>")


def expected_code(handout: Path | None, solution: Path | None) -> str:
    """The code every student is given or expected to write: the handout's and the solution's."""
    return "\n".join(notebook_code(path) for path in (handout, solution) if path is not None and path.is_file())
