"""Files written whole or not at all: a reader never sees half a file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from grader.protocol.text import encodable


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` only once the block ends without an error."""
    partial = path.with_name(f".{path.name}.part")
    try:
        with partial.open("wb") as out:
            yield out
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_atomically(path: Path, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8) to ``path`` atomically."""
    with atomic_output(path) as out:
        # Text that UTF-8 cannot hold (a student's lone surrogate) is replaced, never a failed write
        out.write(encodable(content).encode("utf-8") if isinstance(content, str) else content)
