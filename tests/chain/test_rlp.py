"""RLP: the yellow paper's examples, strict decoding, and encode/decode as inverses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionward.chain import rlp


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
def test_yellow_paper_examples_encode_and_decode(item: rlp.RlpItem, encoded: str) -> None:
    assert rlp.encode(item).hex() == encoded
    assert rlp.decode(bytes.fromhex(encoded)) == item


@pytest.mark.parametrize(("value", "raw"), [(0, b""), (15, b"\x0f"), (1024, b"\x04\x00")])
def test_integers_are_minimal_big_endian(value: int, raw: bytes) -> None:
    assert rlp.encode_uint(value) == raw
    assert rlp.decode_uint(raw) == value


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
    with pytest.raises(rlp.RlpDecodingError):
        rlp.decode(bytes.fromhex(encoded))


def test_integer_with_leading_zero_or_too_wide_is_refused() -> None:
    with pytest.raises(rlp.RlpDecodingError):
        rlp.decode_uint(b"\x00\x01")
    with pytest.raises(rlp.RlpDecodingError):
        rlp.decode_uint(b"\x01" + bytes(8), bits=64)


def test_negative_integers_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        rlp.encode_uint(-1)


_items = st.recursive(
    st.binary(max_size=80), lambda children: st.lists(children, max_size=6), max_leaves=25
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(_items)
def test_decode_inverts_encode(item: rlp.RlpItem) -> None:
    assert rlp.decode(rlp.encode(item)) == item


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_every_accepted_input_re_encodes_to_itself(data: bytes) -> None:
    try:
        item = rlp.decode(data)
    except rlp.RlpDecodingError:
        return
    assert rlp.encode(item) == data
