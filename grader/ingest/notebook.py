"""Load a submitted file as a notebook, refusing what cannot be graded, stored outputs cleared."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.validator import ValidationError

from grader.protocol.text import encodable, encodable_data, may_hold_surrogates, name_text

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
UNENCODABLE = (
    "the notebook holds {count:,} characters that are not text (lone surrogates, from an escape such as \\ud800); "
    "the grader read each as \N{REPLACEMENT CHARACTER}"
)


class InvalidSubmission(Exception):
    """The file cannot be graded as a notebook; the message says why and what to do."""


@dataclass(frozen=True)
class Submission:
    id: str
    path: Path
    notebook: NotebookNode
    # What the grader changed in the notebook's text to read it (said in the result's warnings)
    notes: tuple[str, ...] = ()


def submission_id(path: Path) -> str:
    """A notebook's id: its file's name, shown as it is (``grader.protocol.text.name_text``)."""
    return name_text(path.stem)


def file_stem(submission_id: str) -> str:
    """A file name (without extension) for a submission's files, whatever characters its id
    holds; ids that differ give different names (``x y`` and ``x_y`` do not collide)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", submission_id).lstrip(".")
    if safe == submission_id:
        return safe
    return f"{safe or 'submission'}-{hashlib.sha256(submission_id.encode()).hexdigest()[:8]}"


def load_submission(path: Path) -> Submission:
    """Read ``path`` as a notebook with its outputs cleared; raise ``InvalidSubmission``."""
    if path.is_symlink():
        # A link could point the grader, which may run as root, at any file on the machine.
        raise InvalidSubmission("the file is a symbolic link; submit the notebook file itself")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InvalidSubmission(f"cannot read the file: {error.strerror}") from None
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise InvalidSubmission(
            f"the file is {len(raw) / 2**20:.1f} MiB; notebooks over {MAX_NOTEBOOK_BYTES // 2**20} MiB are not graded. "
            "Clear the outputs (Kernel > Restart & Clear Output) and save again."
        )
    notes: tuple[str, ...] = ()
    try:
        text = raw.decode("utf-8")
        notebook = nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
        if may_hold_surrogates(text):
            notebook, replaced = encodable_data(notebook)
            notebook = nbformat.from_dict(notebook)  # type: ignore[no-untyped-call]
            notes = (UNENCODABLE.format(count=replaced),) if replaced else ()
        nbformat.validate(notebook)
    except (UnicodeDecodeError, ValueError, ValidationError, KeyError, AttributeError, TypeError) as error:
        reason = encodable(str(error).splitlines()[0]) if str(error) else type(error).__name__
        raise InvalidSubmission(
            f"this is not a valid Jupyter notebook ({reason}). Submit the .ipynb file that Jupyter saves."
        ) from None
    if not any(cell.cell_type == "code" and cell.source.strip() for cell in notebook.cells):
        raise InvalidSubmission("the notebook has no code to run. Submit the notebook with your code cells.")
    for cell in notebook.cells:
        # Stored outputs are never trusted: everything is run again.
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return Submission(submission_id(path), path, notebook, notes)
