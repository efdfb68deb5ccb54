"""Strict decoding: readers compiled once per type, accepting only the canonical encoding.

Every reader raises :class:`~.errors.Fault` with the byte position and adds its component's
label on the way out; :class:`~.codec.TupleCodec` turns that into ``CalldataMalformed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, cast

from sessionward.crypto import solidity_types as sol
from sessionward.crypto.solidity_types import WORD, AbiType

from .errors import Fault
from .layout import ONE_WORD, ZERO_12, ZERO_WORD, tuple_items

__all__ = ["DynamicReader", "StaticReader", "sequence_reader", "static_sequence_reader"]

StaticReader = Callable[[bytes, int], object]
DynamicReader = Callable[[bytes, int], tuple[object, int]]


def _uint_reader(t: sol.UintType) -> StaticReader:
    bits = t.bits
    if bits == 256:

        def read_uint256(data: bytes, p: int) -> object:
            return int.from_bytes(data[p : p + WORD], "big")

        return read_uint256

    def read_uint(data: bytes, p: int) -> object:
        value = int.from_bytes(data[p : p + WORD], "big")
        if value >> bits:
            raise Fault(f"uint{bits} has non-zero high-order padding", p)
        return value

    return read_uint


def _int_reader(t: sol.IntType) -> StaticReader:
    bits = t.bits
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def read_int(data: bytes, p: int) -> object:
        value = int.from_bytes(data[p : p + WORD], "big", signed=True)
        if bits != 256 and not low <= value <= high:
            raise Fault(f"int{bits} is not properly sign-extended", p)
        return value

    return read_int


def _read_address(data: bytes, p: int) -> object:
    if data[p : p + 12] != ZERO_12:
        raise Fault("address has non-zero high-order padding", p)
    return "0x" + data[p + 12 : p + WORD].hex()


def _read_bool(data: bytes, p: int) -> object:
    word = data[p : p + WORD]
    if word == ZERO_WORD:
        return False
    if word == ONE_WORD:
        return True
    raise Fault("bool is neither 0 nor 1", p)


def _fixed_bytes_reader(t: sol.FixedBytesType) -> StaticReader:
    size = t.size
    padding = bytes(WORD - size)

    def read_fixed_bytes(data: bytes, p: int) -> object:
        if data[p + size : p + WORD] != padding:
            raise Fault(f"bytes{size} has non-zero right padding", p)
        return data[p : p + size]

    return read_fixed_bytes


def static_sequence_reader(items: Sequence[tuple[AbiType, str]]) -> StaticReader:
    """Reader of a static tuple or static fixed array: components laid out back to back."""
    plan: list[tuple[int, StaticReader, str]] = []
    offset = 0
    for t, label in items:
        plan.append((offset, _static_reader(t), label))
        offset += t.static_size

    def read_static_sequence(data: bytes, p: int) -> object:
        out: list[object] = []
        for off, read, label in plan:
            try:
                out.append(read(data, p + off))
            except Fault as fault:
                fault.path.append(label)
                raise
        return tuple(out)

    return read_static_sequence


def _static_array_reader(t: sol.ArrayType) -> StaticReader:
    if t.length is None:
        raise TypeError(f"{t.canonical} is not a static type")  # unreachable for parsed types
    return static_sequence_reader([(t.item, f"[{i}]") for i in range(t.length)])


_STATIC_READERS: Final[dict[type[AbiType], Callable[[Any], StaticReader]]] = {
    sol.UintType: _uint_reader,
    sol.IntType: _int_reader,
    sol.AddressType: lambda _t: _read_address,
    sol.BoolType: lambda _t: _read_bool,
    sol.FixedBytesType: _fixed_bytes_reader,
    sol.TupleType: lambda t: static_sequence_reader(tuple_items(t, top=False)),
    sol.ArrayType: _static_array_reader,
}


def _static_reader(t: AbiType) -> StaticReader:
    """Reader of a static type at a position whose whole static size is known to be in bounds."""
    make = _STATIC_READERS.get(type(t))
    if make is None:
        raise TypeError(f"{t.canonical} is not a static type")  # unreachable for parsed types
    return make(t)


def _expect_offset(data: bytes, p: int, expected: int) -> None:
    """The offset word at ``p`` must be exactly the canonical ``expected`` offset."""
    word = data[p : p + WORD]
    if word != expected.to_bytes(WORD, "big"):
        found = int.from_bytes(word, "big")
        raise Fault(f"offset {found} is not canonical (the tail starts at {expected})", p)


def sequence_reader(items: Sequence[tuple[AbiType, str]]) -> DynamicReader:
    """Reader of a dynamic tuple (or fixed array of dynamic items): heads, then tails in order."""
    head = sum(t.head_size for t, _ in items)
    plan: list[tuple[int, StaticReader | None, DynamicReader | None, str]] = []
    offset = 0
    for t, label in items:
        if t.is_dynamic:
            plan.append((offset, None, _dynamic_reader(t), label))
        else:
            plan.append((offset, _static_reader(t), None, label))
        offset += t.head_size

    def read_sequence(data: bytes, start: int) -> tuple[object, int]:
        if len(data) - start < head:
            raise Fault(
                f"truncated: the {head}-byte head has only {len(data) - start} bytes", start
            )
        cursor = start + head
        out: list[object] = []
        for off, read_static, read_dynamic, label in plan:
            try:
                if read_dynamic is None:
                    out.append(cast(StaticReader, read_static)(data, start + off))
                else:
                    _expect_offset(data, start + off, cursor - start)
                    value, cursor = read_dynamic(data, cursor)
                    out.append(value)
            except Fault as fault:
                fault.path.append(label)
                raise
        return tuple(out), cursor

    return read_sequence


def _length_word(data: bytes, pos: int, what: str) -> int:
    if len(data) - pos < WORD:
        raise Fault(f"truncated: missing the {what} length word", pos)
    return int.from_bytes(data[pos : pos + WORD], "big")


def _read_raw_bytes(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    length = _length_word(data, pos, what)
    start = pos + WORD
    remaining = len(data) - start
    if length > remaining:
        raise Fault(f"{what} length {length} exceeds the {remaining} bytes that remain", pos)
    end = start + ((length + WORD - 1) // WORD) * WORD
    if end > len(data):
        raise Fault(f"truncated: {what} padding is missing", start + length)
    if data[start + length : end] != bytes(end - start - length):
        raise Fault(f"{what} has non-zero tail padding", start + length)
    return data[start : start + length], end


def _read_bytes(data: bytes, pos: int) -> tuple[object, int]:
    return _read_raw_bytes(data, pos, "bytes")


def _read_string(data: bytes, pos: int) -> tuple[object, int]:
    raw, end = _read_raw_bytes(data, pos, "string")
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise Fault(f"string is not valid UTF-8 ({exc.reason})", pos + WORD + exc.start) from None


def _dynamic_array_reader(item: AbiType) -> DynamicReader:
    stride = item.head_size
    read_static = None if item.is_dynamic else _static_reader(item)
    read_dynamic = _dynamic_reader(item) if item.is_dynamic else None

    def read_array(data: bytes, pos: int) -> tuple[object, int]:
        count = _length_word(data, pos, "array")
        base = pos + WORD
        remaining = len(data) - base
        # Bound the work before allocating anything: every element needs its own head.
        if count * stride > remaining:
            raise Fault(
                f"array length {count} needs {count * stride} bytes but only {remaining} remain",
                pos,
            )
        out: list[object] = []
        i = 0
        try:
            if read_static is not None:
                for i in range(count):
                    out.append(read_static(data, base + i * stride))
                return tuple(out), base + count * stride
            assert read_dynamic is not None
            cursor = base + count * WORD
            for i in range(count):
                _expect_offset(data, base + i * WORD, cursor - base)
                value, cursor = read_dynamic(data, cursor)
                out.append(value)
            return tuple(out), cursor
        except Fault as fault:
            fault.path.append(f"[{i}]")
            raise

    return read_array


def _dynamic_reader(t: AbiType) -> DynamicReader:
    """Reader of a dynamic type whose encoding starts at the given position (its tail)."""
    if isinstance(t, sol.BytesType):
        return _read_bytes
    if isinstance(t, sol.StringType):
        return _read_string
    if isinstance(t, sol.ArrayType):
        if t.length is None:
            return _dynamic_array_reader(t.item)
        return sequence_reader([(t.item, f"[{i}]") for i in range(t.length)])
    if isinstance(t, sol.TupleType):
        return sequence_reader(tuple_items(t, top=False))
    raise TypeError(f"{t.canonical} is not a dynamic type")  # unreachable for parsed types
