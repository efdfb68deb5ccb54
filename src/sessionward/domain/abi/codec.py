"""Compiled tuple codecs (a function's argument list is a top-level tuple)."""

from __future__ import annotations

from functools import lru_cache
from typing import cast

from sessionward.crypto.solidity_types import TupleType

from .decoding import sequence_reader, static_sequence_reader
from .encoding import sequence_encoder, tuple_values
from .errors import AbiEncodeError, CalldataMalformed, EncodeFault, Fault
from .layout import tuple_items

__all__ = ["TupleCodec", "decode_tuple", "encode_tuple"]


class TupleCodec:
    """Strict decoder and canonical encoder of one top-level tuple (``abi.encode`` of its
    components), compiled once: build it at import or configuration time and reuse it."""

    __slots__ = ("_dynamic", "_encode", "_read_dynamic", "_read_static", "_size", "_type")

    def __init__(self, t: TupleType) -> None:
        items = tuple_items(t, top=True)
        self._type = t
        self._dynamic = t.is_dynamic
        self._size = sum(c.type.head_size for c in t.components)
        self._read_static = None if self._dynamic else static_sequence_reader(items)
        self._read_dynamic = sequence_reader(items) if self._dynamic else None
        self._encode = sequence_encoder(items)

    def decode(self, data: bytes, what: str = "ABI data") -> tuple[object, ...]:
        """Strictly decode ``data`` (see the module contract); raises only CalldataMalformed.

        ``what`` names the data in error messages.
        """
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"{what}: expected bytes, got {type(data).__name__}")
            data = bytes(data)
        try:
            if self._read_static is not None:
                # Fully static: the length alone proves the layout; then read the words.
                if len(data) != self._size:
                    if len(data) < self._size:
                        raise Fault(
                            f"truncated: expected {self._size} bytes, got {len(data)}", len(data)
                        )
                    raise Fault(
                        f"{len(data) - self._size} trailing bytes after the canonical end",
                        self._size,
                    )
                return cast(tuple[object, ...], self._read_static(data, 0))
            assert self._read_dynamic is not None
            value, end = self._read_dynamic(data, 0)
            if end != len(data):
                raise Fault(f"{len(data) - end} trailing bytes after the canonical end", end)
            return cast(tuple[object, ...], value)
        except Fault as fault:
            raise CalldataMalformed(fault.describe(what)) from None

    def encode(self, values: object) -> bytes:
        """Canonical encoding of ``values`` (a sequence, or a mapping by component names)."""
        try:
            return self._encode(tuple_values(self._type, values))
        except EncodeFault as fault:
            where = "".join(reversed(fault.path))
            raise AbiEncodeError(f"{where or 'value'}: {fault.reason}") from None


@lru_cache(maxsize=1024)
def _codec(t: TupleType) -> TupleCodec:
    return TupleCodec(t)


def decode_tuple(t: TupleType, data: bytes, *, what: str = "ABI data") -> tuple[object, ...]:
    """Strictly decode ``abi.encode(...)`` of the components of ``t`` (see the module contract).

    ``what`` names the data in error messages. Raises only :class:`CalldataMalformed`.
    """
    return _codec(t).decode(data, what)


def encode_tuple(t: TupleType, values: object) -> bytes:
    """Canonical ``abi.encode`` of ``values`` (a sequence, or a mapping by component names)."""
    return _codec(t).encode(values)
