"""Untrusted text as the host stores, hashes, renders and writes it. Pure Python.

A notebook is JSON, and JSON may hold a lone surrogate (``"\\ud800"``) that no UTF-8 file,
SQLite database or terminal accepts; a file name on Linux is bytes, and bytes that are not
UTF-8 reach Python as surrogates too. Text from a submission is made encodable once, where it
is read, and the writers replace what still slips through, so one student's text never stops
the class's grading. Names (of files, folders, students) are also made visible: a control or
bidirectional-formatting character in a name is shown escaped, never obeyed.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, TypeVar

REPLACEMENT = "\ufffd"
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# What reorders or hides the text shown around it (the "Trojan Source" characters), besides controls
BIDI_FORMATTING = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Unicode categories of characters a name may not show as they are: controls, line and paragraph separators
HIDDEN = ("Cc", "Zl", "Zp")
# Where a JSON text may hold a lone surrogate: an escape of one (a decoded UTF-8 text holds none)
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")

Data = TypeVar("Data")


def encodable(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, so that it encodes as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return LONE_SURROGATE.sub(REPLACEMENT, text)
    return text


def unencodable_count(text: str) -> int:
    """How many characters of ``text`` UTF-8 cannot encode (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return len(LONE_SURROGATE.findall(text))
    return 0


def encodable_data(value: Data) -> tuple[Data, int]:
    """``value`` (JSON-like data: dicts, lists, tuples, strings) with every string, key or value,
    made ``encodable``; and how many characters were replaced."""
    replaced = 0

    def clean(item: Any) -> Any:
        nonlocal replaced
        if isinstance(item, str):
            count = unencodable_count(item)
            replaced += count
            return LONE_SURROGATE.sub(REPLACEMENT, item) if count else item
        if isinstance(item, dict):
            return type(item)((clean(key), clean(inner)) for key, inner in item.items())
        if isinstance(item, list | tuple):
            return type(item)(clean(inner) for inner in item)
        return item

    return clean(value), replaced


def may_hold_surrogates(json_text: str) -> bool:
    """Whether parsing ``json_text`` (decoded from UTF-8) can give a lone surrogate: only an
    escape writes one."""
    return SURROGATE_ESCAPE.search(json_text) is not None


def name_text(name: str) -> str:
    """A name (of a file, a folder, a student) as text every output shows as it is: bytes that
    were not UTF-8 as ``\\xNN``, other lone surrogates, control and bidirectional-formatting
    characters as ``\\uNNNN``. Names that differ stay different; a plain name is unchanged.

    >>> name_text("bad\\udcff.ipynb"), name_text("abc\\u202egpj.exe")
    ('bad\\\\xff.ipynb', 'abc\\\\u202egpj.exe')
    """
    if name.isprintable() and unencodable_count(name) == 0:
        return name
    return "".join(_visible(character) for character in name)


def _visible(character: str) -> str:
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, as os.fsdecode holds it
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF or character in BIDI_FORMATTING or unicodedata.category(character) in HIDDEN:
        return f"\\u{code:04x}"
    return character
