"""Read the files the student's kernel wrote, as hostile input.

A file is opened without following links and without blocking (a FIFO in place of a file
cannot stall the grader), must be a regular file under a size limit, and is read whole or
not at all. JSON is parsed with limits on nesting and on the size of numbers; arrays are read
from their ``.npy`` header on, never unpickled, their size checked against the file's before
any data is read.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from grader.errors import UntrustedDataError

# Digits of the longest integer a JSON file may hold: nothing the kernel records needs more.
MAX_INTEGER_DIGITS = 30
HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, refused unless it is a regular file of at most ``limit`` bytes."""
    with _open_regular(path, limit) as handle:
        content: bytes = handle.read(limit + 1)
    return content


def read_tail(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of ``path`` (a log the kernel writes to), refused unless it is a
    regular file: a link or a FIFO put in its place is never followed or waited on."""
    descriptor = _open_descriptor(path)
    with os.fdopen(descriptor, "rb") as handle:
        size = os.fstat(descriptor).st_size
        handle.seek(max(0, size - limit))
        tail: bytes = handle.read(limit)
    return tail


def read_json(path: Path, limit: int) -> Any:
    """``path`` parsed as JSON; ``UntrustedDataError`` for anything malformed, deep or huge."""
    text = read_regular_file(path, limit)
    try:
        return json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        raise UntrustedDataError(f"{path.name} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise UntrustedDataError(f"{path.name} is not valid JSON ({str(error)[:200]})") from None


def read_array(path: Path, limit: int) -> np.ndarray:
    """An ``.npy`` array of plain numbers from ``path``, at most ``limit`` bytes, never a pickle."""
    with _open_regular(path, limit) as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            version = np.lib.format.read_magic(handle)
            read_header = HEADER_READERS.get(version)
            if read_header is None:
                raise ValueError(f"unknown .npy version {version}")
            shape, fortran_order, dtype = read_header(handle)
        except (ValueError, OSError, SyntaxError, TypeError) as error:
            raise UntrustedDataError(f"{path.name} is not a readable .npy array ({str(error)[:200]})") from None
        if dtype.hasobject or dtype.kind not in "biuf":
            raise UntrustedDataError(f"{path.name} holds {dtype}, not plain numbers (python objects are refused)")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if handle.tell() + count * dtype.itemsize != size:
            raise UntrustedDataError(f"{path.name}: its header says {shape} {dtype}, which its size contradicts")
        data = np.frombuffer(handle.read(count * dtype.itemsize), dtype=dtype)
    return data.reshape(shape, order="F" if fortran_order else "C")


def _open_descriptor(path: Path) -> int:
    """A descriptor of ``path`` opened without following a link or blocking, if it is a regular file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as error:
        # ELOOP: a symbolic link; ENXIO: a socket; others: not readable as a file
        raise UntrustedDataError(f"{path.name} cannot be opened as a file ({error.strerror})") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UntrustedDataError(f"{path.name} is not a regular file")
    return descriptor


def _open_regular(path: Path, limit: int) -> BinaryIO:
    descriptor = _open_descriptor(path)
    status = os.fstat(descriptor)
    if status.st_size > limit:
        os.close(descriptor)
        raise UntrustedDataError(f"{path.name} is larger than {limit} bytes")
    return os.fdopen(descriptor, "rb")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)
