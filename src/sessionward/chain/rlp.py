"""Recursive Length Prefix (RLP) encoding, as the Ethereum yellow paper (appendix B) defines it.

An item is a byte string or a list of items. Integers are encoded as their minimal big-endian
byte string (zero is the empty string), see :func:`encode_uint`.

Decoding is **strict**: only the canonical encoding is accepted (a single byte below ``0x80``
must stand for itself, lengths use the short form when they fit it and have no leading zero
bytes, nothing trails the item), so every accepted byte string has exactly one meaning and
``encode(decode(data)) == data``. Anything else raises :class:`RlpDecodingError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

__all__ = [
    "RlpDecodingError",
    "RlpItem",
    "decode",
    "decode_uint",
    "encode",
    "encode_uint",
]

RlpItem: TypeAlias = bytes | Sequence["RlpItem"]


class RlpDecodingError(ValueError):
    """The bytes are not one canonical RLP item."""


def encode_uint(value: int) -> bytes:
    """Minimal big-endian bytes of a non-negative integer (``0`` → ``b""``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("RLP integers are non-negative ints")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def decode_uint(raw: bytes, *, bits: int = 256) -> int:
    """Inverse of :func:`encode_uint`; refuses leading zero bytes and values over ``bits``."""
    if raw[:1] == b"\x00":
        raise RlpDecodingError("integer with a leading zero byte")
    value = int.from_bytes(raw, "big")
    if value.bit_length() > bits:
        raise RlpDecodingError(f"integer wider than {bits} bits")
    return value


def _length_prefix(length: int, short_base: int) -> bytes:
    if length < 56:
        return bytes([short_base + length])
    size = encode_uint(length)
    return bytes([short_base + 55 + len(size)]) + size


def encode(item: RlpItem) -> bytes:
    """RLP encoding of ``item`` (``bytes``/``bytearray`` or a list/tuple of items)."""
    if isinstance(item, bytes | bytearray):
        raw = bytes(item)
        if len(raw) == 1 and raw[0] < 0x80:
            return raw
        return _length_prefix(len(raw), 0x80) + raw
    if isinstance(item, list | tuple):
        body = b"".join(encode(child) for child in item)
        return _length_prefix(len(body), 0xC0) + body
    raise TypeError(f"cannot RLP-encode {type(item).__name__}")


def _read_length(data: bytes, pos: int, size: int) -> int:
    if pos + size > len(data):
        raise RlpDecodingError("length runs past the end of the input")
    raw = data[pos : pos + size]
    if raw[0] == 0:
        raise RlpDecodingError("length with a leading zero byte")
    length = int.from_bytes(raw, "big")
    if length < 56:
        raise RlpDecodingError("long form used for a short length")
    return length


def _decode_at(data: bytes, pos: int, depth: int) -> tuple[RlpItem, int]:
    """Decode the item starting at ``pos``; return it and the position after it."""
    if depth > 64:
        raise RlpDecodingError("nesting too deep")
    if pos >= len(data):
        raise RlpDecodingError("unexpected end of input")
    prefix = data[pos]
    if prefix < 0x80:
        return data[pos : pos + 1], pos + 1
    if prefix < 0xB8:
        length, start = prefix - 0x80, pos + 1
        if length == 1 and start < len(data) and data[start] < 0x80:
            raise RlpDecodingError("single byte below 0x80 must encode itself")
    elif prefix < 0xC0:
        size = prefix - 0xB7
        length, start = _read_length(data, pos + 1, size), pos + 1 + size
    elif prefix < 0xF8:
        length, start = prefix - 0xC0, pos + 1
        return _decode_list(data, start, start + length, depth)
    else:
        size = prefix - 0xF7
        length, start = _read_length(data, pos + 1, size), pos + 1 + size
        return _decode_list(data, start, start + length, depth)
    end = start + length
    if end > len(data):
        raise RlpDecodingError("string runs past the end of the input")
    return data[start:end], end


def _decode_list(data: bytes, start: int, end: int, depth: int) -> tuple[RlpItem, int]:
    if end > len(data):
        raise RlpDecodingError("list runs past the end of the input")
    items: list[RlpItem] = []
    pos = start
    while pos < end:
        item, pos = _decode_at(data, pos, depth + 1)
        if pos > end:
            raise RlpDecodingError("list item runs past the end of its list")
        items.append(item)
    return items, end


def decode(data: bytes) -> RlpItem:
    """Decode exactly one canonical item spanning all of ``data``.

    Byte strings come back as ``bytes``, lists as ``list``.
    """
    item, end = _decode_at(bytes(data), 0, 0)
    if end != len(data):
        raise RlpDecodingError("trailing bytes after the item")
    return item
