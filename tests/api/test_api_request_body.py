"""Request bodies as :func:`sessionward.api.body.parse_document` reads them: strict JSON, one
object, and no string (key or value, at any depth) that is not valid Unicode.

The lone-surrogate walk only runs when the raw bytes hold a ``\\u`` escape (strict UTF-8
cannot carry a surrogate any other way); these tests hold the two paths to one answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.api.body import parse_document
from sessionward.api.errors import ApiError

LIMIT = 64 * 1024

_text = st.text(alphabet=st.characters(codec=None, exclude_categories=("Cc",)), max_size=6)
_surrogate = st.integers(min_value=0xD800, max_value=0xDFFF).map(chr)
_string = st.one_of(_text, st.tuples(_text, _surrogate, _text).map("".join))
_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), _string),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_string, inner, max_size=3)
    ),
    max_leaves=8,
)


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    return False


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_string, _value, max_size=4), st.booleans())
def test_a_body_is_refused_exactly_when_a_string_in_it_is_not_unicode(
    document: dict[str, Any], ascii_only: bool
) -> None:
    # Not ascii_only: a surrogate goes out as raw (invalid UTF-8) bytes, refused as well.
    raw = json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    if _has_surrogate(document):
        with pytest.raises(ApiError) as refused:
            parse_document(raw, LIMIT)
        assert refused.value.status == 400
    else:
        assert parse_document(raw, LIMIT) == document


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":{"b":["\\ud800"]}}',
        b'{"a":{"\\udfff":1}}',
        b'{"\\uD83D":"x"}',
        b'{"a":"\\\\\\udc00"}',
    ],
)
def test_a_lone_surrogate_anywhere_is_refused(raw: bytes) -> None:
    with pytest.raises(ApiError) as refused:
        parse_document(raw, LIMIT)
    assert refused.value.status == 400
    assert refused.value.code == "INPUT_MALFORMED"


def test_an_escaped_surrogate_pair_is_one_character_and_accepted() -> None:
    assert parse_document(b'{"a":"\\ud83d\\ude00"}', LIMIT) == {"a": "\U0001f600"}
