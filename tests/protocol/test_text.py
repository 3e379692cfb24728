"""Untrusted text made safe to store, hash and show: lone surrogates replaced, names escaped."""

from __future__ import annotations

import json
import os

import pytest

from grader.protocol.text import REPLACEMENT, encodable, encodable_data, may_hold_surrogates, name_text


def test_a_lone_surrogate_is_replaced_and_valid_text_is_unchanged():
    assert encodable("a\ud800b\udfff") == f"a{REPLACEMENT}b{REPLACEMENT}"
    assert encodable("😀 naïve") == "😀 naïve"
    assert encodable("a\ud800b").encode("utf-8")


def test_every_string_of_json_data_is_replaced_and_counted():
    data = json.loads('{"cells": [{"source": "x\\ud800", "\\udc00key": ["\\ud83d", 1, null]}]}')
    cleaned, replaced = encodable_data(data)
    assert replaced == 3
    assert json.dumps(cleaned, ensure_ascii=False).encode("utf-8")
    assert cleaned["cells"][0]["source"] == f"x{REPLACEMENT}"
    assert encodable_data({"plain": ["text", 1.5]}) == ({"plain": ["text", 1.5]}, 0)


def test_only_an_escape_in_json_can_give_a_surrogate():
    assert may_hold_surrogates('{"a": "\\ud800"}') and may_hold_surrogates('"\\uDFFF"')
    assert not may_hold_surrogates('{"a": "\\u00e9 \\ud7ff \\ue000"}')


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"bad\xff\xfename", "bad\\xff\\xfename"),
        (b"\xe2\x80\xaegpj.exe", "\\u202egpj.exe"),
        (b"tab\there", "tab\\u0009here"),
        (b"caf\xc3\xa9 \xf0\x9f\x98\x80", "café 😀"),
    ],
)
def test_a_name_from_the_file_system_is_shown_as_it_is_never_obeyed(raw, shown):
    name = os.fsdecode(raw)
    assert name_text(name) == shown
    assert name_text(name).isprintable()
    assert name_text(name_text(name)) == name_text(name)


def test_names_that_differ_stay_different():
    names = [os.fsdecode(raw) for raw in (b"a\xff", b"a\xfe", b"a\xef\xbf\xbd", b"a")]
    assert len({name_text(name) for name in names}) == len(names)
