"""Canonical encoding: encoders compiled once per type.

Every encoder raises :class:`~.errors.EncodeFault` for a value that does not fit and adds its
component's label on the way out; the public functions turn that into ``AbiEncodeError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

from sessionward.crypto import solidity_types as sol
from sessionward.crypto.address import is_address_text
from sessionward.crypto.solidity_types import WORD, AbiType, TupleType

from .errors import EncodeFault
from .layout import ONE_WORD, ZERO_12, ZERO_WORD, tuple_items

__all__ = ["Encoder", "encoder", "sequence_encoder", "tuple_values"]

Encoder = Callable[[object], bytes]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _uint_encoder(t: sol.UintType) -> Encoder:
    bits = t.bits
    limit = 1 << bits

    def encode_uint(value: object) -> bytes:
        if not _is_int(value):
            raise EncodeFault(f"uint{bits} needs an int, got {type(value).__name__}")
        number = cast(int, value)
        if not 0 <= number < limit:
            raise EncodeFault(f"{number} is out of range for uint{bits}")
        return number.to_bytes(WORD, "big")

    return encode_uint


def _int_encoder(t: sol.IntType) -> Encoder:
    bits = t.bits
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def encode_int(value: object) -> bytes:
        if not _is_int(value):
            raise EncodeFault(f"int{bits} needs an int, got {type(value).__name__}")
        number = cast(int, value)
        if not low <= number <= high:
            raise EncodeFault(f"{number} is out of range for int{bits}")
        return number.to_bytes(WORD, "big", signed=True)

    return encode_int


def _encode_address(value: object) -> bytes:
    if not is_address_text(value):
        raise EncodeFault(f"address needs '0x' and 40 hex digits, got {value!r}")
    return ZERO_12 + bytes.fromhex(value[2:])


def _encode_bool(value: object) -> bytes:
    if not isinstance(value, bool):
        raise EncodeFault(f"bool needs a bool, got {type(value).__name__}")
    return ONE_WORD if value else ZERO_WORD


def _fixed_bytes_encoder(t: sol.FixedBytesType) -> Encoder:
    size = t.size

    def encode_fixed_bytes(value: object) -> bytes:
        if not isinstance(value, bytes | bytearray) or len(value) != size:
            raise EncodeFault(f"bytes{size} needs exactly {size} bytes, got {value!r}")
        return bytes(value) + bytes(WORD - size)

    return encode_fixed_bytes


def _pad_right(raw: bytes) -> bytes:
    return len(raw).to_bytes(WORD, "big") + raw + bytes(-len(raw) % WORD)


def _encode_bytes(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise EncodeFault(f"bytes needs bytes, got {type(value).__name__}")
    return _pad_right(bytes(value))


def _encode_string(value: object) -> bytes:
    if not isinstance(value, str):
        raise EncodeFault(f"string needs a str, got {type(value).__name__}")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeFault("string is not encodable as UTF-8") from None
    return _pad_right(raw)


def _as_items(value: object, count: int | None, what: str) -> Sequence[object]:
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence):
        raise EncodeFault(f"{what} needs a list or tuple, got {type(value).__name__}")
    if count is not None and len(value) != count:
        raise EncodeFault(f"{what} needs {count} items, got {len(value)}")
    return value


def sequence_encoder(items: Sequence[tuple[AbiType, str]]) -> Callable[[Sequence[object]], bytes]:
    """Canonical encoder of a sequence: heads in order, then the dynamic tails in order."""
    head = sum(t.head_size for t, _ in items)
    plan = [(t.is_dynamic, encoder(t), label) for t, label in items]

    def encode_sequence(values: Sequence[object]) -> bytes:
        heads: list[bytes] = []
        tails: list[bytes] = []
        tail_offset = head
        for (dynamic, encode, label), value in zip(plan, values, strict=True):
            try:
                encoded = encode(value)
            except EncodeFault as fault:
                fault.path.append(label)
                raise
            if dynamic:
                heads.append(tail_offset.to_bytes(WORD, "big"))
                tails.append(encoded)
                tail_offset += len(encoded)
            else:
                heads.append(encoded)
        return b"".join(heads) + b"".join(tails)

    return encode_sequence


def tuple_values(t: TupleType, value: object) -> Sequence[object]:
    """A tuple's values from a sequence, or from a mapping keyed by component names."""
    if isinstance(value, Mapping):
        names = [c.name for c in t.components]
        if None in names:
            raise EncodeFault("a mapping can only encode a tuple whose components are all named")
        if set(value) != set(names):
            raise EncodeFault(f"tuple needs exactly the keys {names}, got {sorted(value)}")
        return [value[name] for name in names]
    return _as_items(value, len(t.components), "tuple")


def _tuple_encoder(t: TupleType) -> Encoder:
    encode_components = sequence_encoder(tuple_items(t, top=False))

    def encode_tuple_value(value: object) -> bytes:
        return encode_components(tuple_values(t, value))

    return encode_tuple_value


def _array_encoder(t: sol.ArrayType) -> Encoder:
    item_encoder = encoder(t.item)
    item_dynamic, length, canonical = t.item.is_dynamic, t.length, t.canonical

    def encode_array(value: object) -> bytes:
        values = _as_items(value, length, canonical)
        encoded = [_encode_item(item_encoder, v, i) for i, v in enumerate(values)]
        if item_dynamic:
            heads: list[bytes] = []
            offset = WORD * len(encoded)
            for tail in encoded:
                heads.append(offset.to_bytes(WORD, "big"))
                offset += len(tail)
            encoded = heads + encoded
        body = b"".join(encoded)
        if length is None:
            return len(values).to_bytes(WORD, "big") + body
        return body

    return encode_array


_ENCODERS: Final[dict[type[AbiType], Callable[[Any], Encoder]]] = {
    sol.UintType: _uint_encoder,
    sol.IntType: _int_encoder,
    sol.AddressType: lambda _t: _encode_address,
    sol.BoolType: lambda _t: _encode_bool,
    sol.FixedBytesType: _fixed_bytes_encoder,
    sol.BytesType: lambda _t: _encode_bytes,
    sol.StringType: lambda _t: _encode_string,
    sol.TupleType: _tuple_encoder,
    sol.ArrayType: _array_encoder,
}


def encoder(t: AbiType) -> Encoder:
    """The canonical encoder of ``t``, compiled once (``TypeError`` for a type with no ABI
    layout, such as an EIP-712 struct name)."""
    make = _ENCODERS.get(type(t))
    if make is None:
        raise TypeError(f"cannot encode {t!r}")
    return make(t)


def _encode_item(encode: Encoder, value: object, index: int) -> bytes:
    try:
        return encode(value)
    except EncodeFault as fault:
        fault.path.append(f"[{index}]")
        raise
