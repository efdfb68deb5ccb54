"""The one JSON form of typed Solidity values, both ways.

Every place a typed value crosses JSON uses these two functions: a call's JSON arguments
(``Prepare`` with ``method`` and ``args``), the EIP-712 message a wallet signs
(:meth:`sessionward.crypto.eip712.TypedDataSchema.message_document`) and the SDK's reading of
that message back (:mod:`sessionward.sdk.grants`). It sits in ``crypto`` next to the type
grammar (:mod:`sessionward.crypto.solidity_types`) so that all of them may import it.

====================  ===========================================  ==========================
type                  JSON (read by :func:`value_from_json`)       Python value
====================  ===========================================  ==========================
``uintN``/``intN``    a JSON integer or a decimal string, in range  ``int``
``address``           ``"0x"`` + 40 hex digits (lower case or a     lower-case ``0x`` ``str``
                      valid EIP-55 checksum)
``bool``              ``true`` / ``false``                          ``bool``
``bytesN``/``bytes``  ``"0x"`` + hex (exactly N bytes for bytesN)   ``bytes``
``string``            a string                                      ``str``
``T[]``/``T[k]``      a list (exactly k items for ``T[k]``)         ``tuple``
tuple                 a list, or an object keyed by every name      ``tuple``
struct (EIP-712)      an object with exactly the struct's fields    ``dict``
====================  ===========================================  ==========================

:func:`value_to_json` writes the same forms (integers as decimal strings, addresses EIP-55
checksummed, bytes as lower-case hex, tuples as lists, structs as objects) from any value the
ABI encoder or the EIP-712 hasher accepts. A value that does not fit raises
:class:`AbiJsonError` (a ``ValueError``) whose message starts with the value's path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from sessionward.crypto import solidity_types as sol
from sessionward.crypto.address import normalize_address, to_checksum_address
from sessionward.crypto.solidity_types import AbiType, Param

__all__ = ["AbiJsonError", "StructFields", "value_from_json", "value_to_json"]

#: The fields of each struct a :class:`StructType` may name (an EIP-712 schema's structs).
StructFields = Mapping[str, Sequence[Param]]

_NO_STRUCTS: Final[StructFields] = {}
_DECIMAL: Final = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_HEX: Final = re.compile(r"0x(?:[0-9a-fA-F]{2})*\Z")
#: Longest decimal text read as an integer (2**256 has 78 digits): bounds int() on input.
_MAX_DIGITS: Final = 78


class AbiJsonError(ValueError):
    """A JSON value that does not fit its type; ``path`` locates it (``args[1].amount``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# JSON -> value

_Reader = Callable[[Any, object, str, StructFields], object]


def value_from_json(
    t: AbiType, value: object, path: str = "", *, structs: StructFields = _NO_STRUCTS
) -> object:
    """The Python value of the JSON ``value`` of type ``t`` (see the module table).

    ``path`` names the value in error messages; ``structs`` gives the fields of the structs a
    :class:`StructType` may name. Raises :class:`AbiJsonError`.
    """
    return _READERS[type(t)](t, value, path, structs)


def _integer(t: sol.UintType | sol.IntType, value: object, path: str) -> int:
    if isinstance(value, bool):
        raise AbiJsonError(path, f"expected an integer ({t.canonical}), got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) <= _MAX_DIGITS + 1 and _DECIMAL.match(value):
        return int(value)
    raise AbiJsonError(path, f"expected an integer ({t.canonical}) as a decimal string")


def _read_uint(t: sol.UintType, value: object, path: str, _: StructFields) -> int:
    number = _integer(t, value, path)
    if not 0 <= number < 1 << t.bits:
        raise AbiJsonError(path, f"out of range for {t.canonical} [0, {(1 << t.bits) - 1}]")
    return number


def _read_int(t: sol.IntType, value: object, path: str, _: StructFields) -> int:
    number = _integer(t, value, path)
    if not -(1 << (t.bits - 1)) <= number < 1 << (t.bits - 1):
        raise AbiJsonError(path, f"out of range for {t.canonical}")
    return number


def _read_address(_t: sol.AddressType, value: object, path: str, _: StructFields) -> str:
    if not isinstance(value, str):
        raise AbiJsonError(path, "expected an address (0x followed by 40 hex digits)")
    try:
        return normalize_address(value)
    except ValueError as exc:
        raise AbiJsonError(path, str(exc)) from None


def _read_bool(_t: sol.BoolType, value: object, path: str, _: StructFields) -> bool:
    if not isinstance(value, bool):
        raise AbiJsonError(path, "expected true or false")
    return value


def _hex(value: object, path: str) -> bytes:
    if not isinstance(value, str) or _HEX.match(value) is None:
        raise AbiJsonError(path, "expected 0x-prefixed hex")
    return bytes.fromhex(value[2:])


def _read_fixed_bytes(t: sol.FixedBytesType, value: object, path: str, _: StructFields) -> bytes:
    raw = _hex(value, path)
    if len(raw) != t.size:
        raise AbiJsonError(path, f"expected {t.size} bytes, got {len(raw)}")
    return raw


def _read_bytes(_t: sol.BytesType, value: object, path: str, _: StructFields) -> bytes:
    return _hex(value, path)


def _read_string(_t: sol.StringType, value: object, path: str, _: StructFields) -> str:
    if not isinstance(value, str):
        raise AbiJsonError(path, "expected a string")
    return value


def _read_array(
    t: sol.ArrayType, value: object, path: str, structs: StructFields
) -> tuple[object, ...]:
    if not isinstance(value, list):
        raise AbiJsonError(path, "expected a list")
    if t.length is not None and len(value) != t.length:
        raise AbiJsonError(path, f"expected {t.length} items, got {len(value)}")
    return tuple(
        value_from_json(t.item, v, f"{path}[{i}]", structs=structs) for i, v in enumerate(value)
    )


def _read_fields(
    fields: Sequence[Param], value: Mapping[Any, object], path: str, structs: StructFields
) -> list[object]:
    """The values of an object keyed by exactly the names of ``fields``, in field order."""
    names = {f.name for f in fields}
    unknown = sorted(str(k) for k in value if k not in names)
    if unknown:
        raise AbiJsonError(path, f"unknown fields {unknown}")
    values: list[object] = []
    for f in fields:
        where = f"{path}.{f.name}"
        if f.name not in value:
            raise AbiJsonError(where, "missing field")
        values.append(value_from_json(f.type, value[f.name], where, structs=structs))
    return values


def _read_tuple(
    t: sol.TupleType, value: object, path: str, structs: StructFields
) -> tuple[object, ...]:
    fields = t.components
    if isinstance(value, Mapping) and all(f.name is not None for f in fields):
        return tuple(_read_fields(fields, value, path, structs))
    if not isinstance(value, list) or len(value) != len(fields):
        raise AbiJsonError(path, f"expected {len(fields)} fields")
    return tuple(
        value_from_json(f.type, v, f"{path}.{f.name or i}", structs=structs)
        for i, (f, v) in enumerate(zip(fields, value, strict=True))
    )


def _read_struct(
    t: sol.StructType, value: object, path: str, structs: StructFields
) -> dict[str, object]:
    fields = _struct_fields(t, structs)
    if not isinstance(value, Mapping):
        raise AbiJsonError(path, f"expected an object ({t.name})")
    values = _read_fields(fields, value, path, structs)
    return {str(f.name): v for f, v in zip(fields, values, strict=True)}


def _struct_fields(t: sol.StructType, structs: StructFields) -> Sequence[Param]:
    try:
        return structs[t.name]
    except KeyError:
        raise AbiJsonError("", f"undefined struct {t.name!r}") from None


_READERS: Final[dict[type[AbiType], _Reader]] = {
    sol.UintType: _read_uint,
    sol.IntType: _read_int,
    sol.AddressType: _read_address,
    sol.BoolType: _read_bool,
    sol.FixedBytesType: _read_fixed_bytes,
    sol.BytesType: _read_bytes,
    sol.StringType: _read_string,
    sol.ArrayType: _read_array,
    sol.TupleType: _read_tuple,
    sol.StructType: _read_struct,
}


# ---------------------------------------------------------------------------------------------
# value -> JSON

_Writer = Callable[[Any, Any, StructFields], object]


def value_to_json(t: AbiType, value: Any, *, structs: StructFields = _NO_STRUCTS) -> object:
    """The JSON form of ``value`` of type ``t``: what :func:`value_from_json` reads back.

    ``value`` is one the ABI encoder or the EIP-712 hasher accepts (addresses as hex text or
    20 bytes, bytes as ``bytes`` or ``0x`` hex, sequences for arrays and tuples, mappings for
    structs); the caller has checked it. Raises :class:`AbiJsonError` for an undefined struct.
    """
    return _WRITERS[type(t)](t, value, structs)


def _write_integer(_t: AbiType, value: Any, _: StructFields) -> str:
    return str(int(value))


def _write_address(_t: AbiType, value: Any, _: StructFields) -> str:
    return to_checksum_address(value)


def _write_hex(_t: AbiType, value: Any, _: StructFields) -> str:
    return "0x" + value[2:].lower() if isinstance(value, str) else "0x" + bytes(value).hex()


def _write_as_is(_t: AbiType, value: Any, _: StructFields) -> object:
    return value


def _write_array(t: sol.ArrayType, value: Any, structs: StructFields) -> list[object]:
    return [value_to_json(t.item, v, structs=structs) for v in value]


def _write_tuple(t: sol.TupleType, value: Any, structs: StructFields) -> list[object]:
    if isinstance(value, Mapping):
        value = [value[c.name] for c in t.components]
    return [
        value_to_json(c.type, v, structs=structs) for c, v in zip(t.components, value, strict=True)
    ]


def _write_struct(t: sol.StructType, value: Any, structs: StructFields) -> dict[str, object]:
    return {
        str(f.name): value_to_json(f.type, value[f.name], structs=structs)
        for f in _struct_fields(t, structs)
    }


_WRITERS: Final[dict[type[AbiType], _Writer]] = {
    sol.UintType: _write_integer,
    sol.IntType: _write_integer,
    sol.AddressType: _write_address,
    sol.BoolType: _write_as_is,
    sol.FixedBytesType: _write_hex,
    sol.BytesType: _write_hex,
    sol.StringType: _write_as_is,
    sol.ArrayType: _write_array,
    sol.TupleType: _write_tuple,
    sol.StructType: _write_struct,
}
