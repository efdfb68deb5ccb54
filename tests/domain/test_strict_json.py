"""Specification of strict JSON (sessionward.domain.strict_json): the door of every body and envelope.

Accepted: RFC 8259 JSON whose numbers are integers in [-2**256, 2**256), with unique keys at every
depth, at most MAX_DEPTH levels deep, within the size limit. Everything else is MalformedJson with
INPUT_MALFORMED (or PAYLOAD_TOO_LARGE for size), never another exception.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.domain import strict_json
from sessionward.domain.strict_json import DEFAULT_MAX_BYTES, MAX_DEPTH, MalformedJson, loads
from sessionward.reasons import ReasonCode, SessionWardError


def refused(raw: bytes | str, code: ReasonCode = ReasonCode.INPUT_MALFORMED, **kw: Any) -> str:
    with pytest.raises(MalformedJson) as info:
        loads(raw, **kw)
    assert info.value.code is code
    return info.value.message


# --- what is accepted ----------------------------------------------------------------------


def test_plain_document_is_parsed_from_bytes_and_text() -> None:
    text = '{"a": [1, -2, "x", true, false, null], "b": {"c": "é"}}'
    expected = {"a": [1, -2, "x", True, False, None], "b": {"c": "é"}}
    assert loads(text) == expected
    assert loads(text.encode("utf-8")) == expected


@pytest.mark.parametrize("ws", [" ", "\t", "\n", "\r", " \r\n\t "])
def test_json_whitespace_around_the_document_is_accepted(ws: str) -> None:
    assert loads(f'{ws}{{"a": 1}}{ws}') == {"a": 1}


def test_the_256_bit_integer_bounds_are_inclusive_below_and_exclusive_above() -> None:
    assert loads(str(2**256 - 1)) == 2**256 - 1
    assert loads(str(-(2**256))) == -(2**256)


def test_max_depth_is_accepted() -> None:
    doc = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    value = loads(doc)
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


def test_many_shallow_brackets_are_not_depth() -> None:
    """More openers than MAX_DEPTH (so the depth is walked, not bounded by their count), but
    two levels deep."""
    doc = "[" + ",".join(["[]"] * (MAX_DEPTH * 2)) + "]"
    assert loads(doc) == [[]] * (MAX_DEPTH * 2)


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    deep_text = "[" * 1000 + '\\"' + "{" * 1000
    assert loads(json.dumps({"s": deep_text})) == {"s": deep_text}


def test_a_document_of_exactly_the_size_limit_is_accepted() -> None:
    raw = b'"' + b"a" * 98 + b'"'
    assert len(raw) == 100
    assert loads(raw, max_bytes=100) == "a" * 98


# --- what is refused -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        '{"a": 1, "a": 1}',
        '{"a": 1, "b": {"c": 1, "c": 2}}',
        '{"a": [{"x": {"y": [{"z": 1, "z": 1}]}}]}',
        '{"a": 1, "\\u0061": 2}',  # the same key once decoded
    ],
    ids=["top", "nested", "deep-in-lists", "escaped-alias"],
)
def test_duplicate_keys_at_any_depth_are_refused(raw: str) -> None:
    assert "duplicate key" in refused(raw)


@pytest.mark.parametrize(
    "raw", ["500.0", "1e3", "1E3", "-0.5", "1e-3", "0.0", '{"maxValueUsd": 500.0}', "[1, [2.5]]"]
)
def test_floats_are_refused_in_every_spelling(raw: str) -> None:
    assert "integers" in refused(raw)


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", '{"a": NaN}', "[Infinity]"])
def test_nan_and_infinity_are_refused(raw: str) -> None:
    refused(raw)


@pytest.mark.parametrize("number", [2**256, -(2**256) - 1, 10**80, -(10**100)])
def test_integers_outside_256_bits_are_refused(number: int) -> None:
    refused(f'{{"amount": {number}}}')


def test_a_hundred_thousand_digit_integer_is_refused_quickly() -> None:
    start = time.perf_counter()
    refused("9" * 100_000, max_bytes=10**6)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
def test_one_level_over_max_depth_is_refused(opener: str, closer: str) -> None:
    depth = MAX_DEPTH + 1
    assert "nesting" in refused(opener * depth + "1" + closer * depth)


@pytest.mark.parametrize(
    "bomb", ["[" * 1_000_000, '{"a":' * 200_000, "[" * 200_000 + "]" * 200_000]
)
def test_depth_bombs_are_refused_fast(bomb: str) -> None:
    start = time.perf_counter()
    refused(bomb, max_bytes=10**7)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("raw", ["{} {}", "{}x", "1 2", "[]]", '{"a": 1},', '"a""b"', "{}\x00"])
def test_trailing_data_is_refused(raw: str) -> None:
    refused(raw)


@pytest.mark.parametrize("trailer", ["\u00a0", "\x1c", "\x0b", "\x0c", "\u2028", "\u3000"])
def test_non_json_whitespace_around_the_document_is_refused(trailer: str) -> None:
    # RFC 8259 whitespace is exactly space, tab, LF and CR; anything else is not JSON.
    refused('{"a": 1}' + trailer)
    refused(trailer + '{"a": 1}')


@pytest.mark.parametrize(
    "raw",
    [b'{"a": "\xff"}', b"\xc3\x28", b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\xf8\x88\x80\x80\x80"'],
    ids=["ff", "bad-continuation", "overlong", "encoded-surrogate", "five-bytes"],
)
def test_invalid_utf8_is_refused(raw: bytes) -> None:
    assert "UTF-8" in refused(raw)


@pytest.mark.parametrize("raw", ["", "   ", "{", '{"a"}', "{'a': 1}", "[1,]", '{"a":1,}', "tru"])
def test_broken_syntax_is_refused(raw: str) -> None:
    refused(raw)


def test_a_document_one_byte_over_the_limit_is_payload_too_large() -> None:
    raw = b'"' + b"a" * 99 + b'"'
    refused(raw, ReasonCode.PAYLOAD_TOO_LARGE, max_bytes=100)


def test_the_default_limit_is_256_kib() -> None:
    assert DEFAULT_MAX_BYTES == 256 * 1024
    fits = b'"' + b"a" * (DEFAULT_MAX_BYTES - 2) + b'"'
    assert len(loads(fits)) == DEFAULT_MAX_BYTES - 2
    refused(fits + b" ", ReasonCode.PAYLOAD_TOO_LARGE)


def test_the_size_limit_counts_utf8_bytes_of_text_input() -> None:
    # 202 characters, 402 bytes: text input must not buy twice the budget with non-ASCII.
    text = '"' + "é" * 200 + '"'
    refused(text, ReasonCode.PAYLOAD_TOO_LARGE, max_bytes=300)


def test_malformed_json_is_a_sessionward_error() -> None:
    with pytest.raises(SessionWardError):
        loads("[1.0]")


# --- properties ----------------------------------------------------------------------------

_JSONISH = st.text(alphabet=st.sampled_from(list('{}[]",:0123456789.eE+-\\ untrfalsNIy\u00e9\x00')))

_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**256), max_value=2**256 - 1)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=200), _JSONISH, st.binary(max_size=200)))
def test_random_input_never_raises_anything_but_malformed_json(raw: str | bytes) -> None:
    try:
        strict_json.loads(raw)
    except MalformedJson as exc:
        assert exc.code in (ReasonCode.INPUT_MALFORMED, ReasonCode.PAYLOAD_TOO_LARGE)


@settings(max_examples=200)
@given(_VALUES)
def test_every_strict_value_round_trips_through_dumps(value: object) -> None:
    assert loads(json.dumps(value)) == value
    assert loads(json.dumps(value, ensure_ascii=False).encode("utf-8")) == value
