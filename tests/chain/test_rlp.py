"""RLP comes from the ``rlp`` package (pyrlp). What the transaction decoder relies on is pinned
here: the yellow paper's examples, canonical-only decoding (every accepted byte string has one
meaning), minimal integers, and encode/decode as inverses."""

from __future__ import annotations

from typing import Any

import pytest
import rlp  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st
from rlp.sedes import big_endian_int  # type: ignore[import-untyped]


def encode(item: Any) -> bytes:
    """As chain/ethereum_transactions.py encodes: bytes and lists, no type inference."""
    encoded: bytes = rlp.encode(item, infer_serializer=False)
    return encoded


@pytest.mark.parametrize(
    ("item", "encoded"),
    [
        (b"dog", "83646f67"),
        ([b"cat", b"dog"], "c88363617483646f67"),
        (b"", "80"),
        ([], "c0"),
        (b"\x00", "00"),
        (b"\x0f", "0f"),
        (b"\x04\x00", "820400"),
        ([[], [[]], [[], [[]]]], "c7c0c1c0c3c0c1c0"),
        (
            b"Lorem ipsum dolor sit amet, consectetur adipisicing elit",
            "b838" + b"Lorem ipsum dolor sit amet, consectetur adipisicing elit".hex(),
        ),
    ],
)
def test_yellow_paper_examples_encode_and_decode(item: Any, encoded: str) -> None:
    assert encode(item).hex() == encoded
    assert rlp.decode(bytes.fromhex(encoded), strict=True) == item


@pytest.mark.parametrize(("value", "raw"), [(0, b""), (15, b"\x0f"), (1024, b"\x04\x00")])
def test_integers_are_minimal_big_endian(value: int, raw: bytes) -> None:
    assert big_endian_int.serialize(value) == raw
    assert big_endian_int.deserialize(raw) == value


@pytest.mark.parametrize(
    "encoded",
    [
        "8100",  # single byte below 0x80 wrapped in a string header
        "817f",
        "b800",  # long form for a short length
        "b80100",
        "b90000",  # length with a leading zero byte
        "83646f",  # truncated string
        "c883636174",  # truncated list
        "83646f6700",  # trailing byte
        "",
        "c28363",  # list item runs past its list
    ],
)
def test_non_canonical_or_truncated_input_is_refused(encoded: str) -> None:
    with pytest.raises(rlp.DecodingError):
        rlp.decode(bytes.fromhex(encoded), strict=True)


def test_integer_with_leading_zero_is_refused_and_negative_cannot_be_encoded() -> None:
    with pytest.raises(rlp.DeserializationError):
        big_endian_int.deserialize(b"\x00\x01")
    with pytest.raises(rlp.SerializationError):
        big_endian_int.serialize(-1)


_items = st.recursive(
    st.binary(max_size=80), lambda children: st.lists(children, max_size=6), max_leaves=25
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(_items)
def test_decode_inverts_encode(item: Any) -> None:
    assert rlp.decode(encode(item), strict=True) == item
