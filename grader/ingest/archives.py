"""Unpack a zip an instructor downloaded from an LMS, as untrusted input: no path that leaves
the folder, no links, and limits on the count, the total size and the compression ratio of
its files, each refusal a clear error before anything is written."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from grader.errors import GraderError


@dataclass(frozen=True)
class ZipLimits:
    files: int = 20_000
    total_bytes: int = 4 * 2**30
    file_bytes: int = 100 * 2**20
    # A notebook compresses to a tenth at most; a thousandfold ratio is a zip bomb.
    ratio: float = 200.0


UNSAFE_HINT = (
    "Nothing was unpacked: download the submissions again from the LMS, or unpack the zip yourself, "
    "look at it, and hand the grader the folder"
)


def unpack_zip(archive: Path, into: Path, limits: ZipLimits = ZipLimits()) -> Path:
    """Extract ``archive`` into the new folder ``into``; raise ``GraderError`` naming the entry
    and what is wrong with it, leaving nothing unpacked, when the zip is unsafe or too big."""
    try:
        with zipfile.ZipFile(archive) as opened:
            entries = [entry for entry in opened.infolist() if not entry.is_dir()]
            _check(archive, entries, limits)
            into.mkdir(parents=True)
            try:
                for entry in entries:
                    _extract(archive, opened, entry, into)
            except BaseException:
                shutil.rmtree(into, ignore_errors=True)
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as error:
        raise GraderError(f"{archive} is not a readable zip file ({error}). Download it again from the LMS.") from None
    except GraderError as error:
        raise GraderError(f"{error}. {UNSAFE_HINT}") from None
    return into


def _extract(archive: Path, opened: zipfile.ZipFile, entry: zipfile.ZipInfo, into: Path) -> None:
    target = into.joinpath(*PurePosixPath(entry.filename).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    with opened.open(entry) as source, target.open("wb") as out:
        copied = 0
        while chunk := source.read(1 << 20):
            copied += len(chunk)
            if copied > entry.file_size:  # the header lied about the size
                raise GraderError(f"{archive}: {entry.filename} is larger than its zip entry says")
            out.write(chunk)
    # The LMS's time of each file tells a resubmission from the first try.
    written = datetime(*entry.date_time).timestamp()
    os.utime(target, (written, written))


def _check(archive: Path, entries: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    if len(entries) > limits.files:
        raise GraderError(f"{archive} holds {len(entries):,} files; at most {limits.files:,} are unpacked")
    total = sum(entry.file_size for entry in entries)
    if total > limits.total_bytes:
        raise GraderError(f"{archive} unpacks to {total:,} bytes; at most {limits.total_bytes:,} are unpacked")
    for entry in entries:
        name = entry.filename
        parts = PurePosixPath(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or "\\" in name or ":" in (parts[0] if parts else ""):
            raise GraderError(f"{archive}: the entry {name!r} would be written outside the folder; refused")
        if stat.S_ISLNK(entry.external_attr >> 16):
            raise GraderError(f"{archive}: the entry {name!r} is a symbolic link; refused")
        if entry.file_size > limits.file_bytes:
            raise GraderError(f"{archive}: {name} is {entry.file_size:,} bytes; at most {limits.file_bytes:,} per file")
        if entry.file_size > 1_000_000 and entry.file_size > limits.ratio * max(entry.compress_size, 1):
            raise GraderError(
                f"{archive}: {name} compresses {entry.file_size / max(entry.compress_size, 1):,.0f} times; "
                "a file compressed that much is refused (a zip bomb?)"
            )
