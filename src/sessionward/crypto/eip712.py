"""A generic EIP-712 structured-data hasher, compiled once per schema.

:class:`TypedDataSchema` takes the struct definitions (type name -> ordered ``(type, name)``
fields), checks them, and precomputes for every struct its ``encodeType`` string, its
``typeHash`` and an *encoder plan*: one small closure per field that turns a Python value into
the field's 32-byte ``encodeData`` word. Hashing a message then only walks the plan; no type
string is parsed and no ABI encoder is consulted at hash time.

Values are accepted strictly, so that two different Python values never hash the same without
the caller meaning it:

====================  =====================================================================
EIP-712 type          accepted Python value
====================  =====================================================================
``uintN`` / ``intN``  ``int`` (not ``bool``) inside the type's range
``bool``              ``bool``
``address``           ``"0x"`` + 40 hex digits, all lower case or a valid EIP-55 checksum;
                      or 20 ``bytes``
``bytesN``            exactly N ``bytes``, or a ``"0x"`` hex string of exactly N bytes
``bytes``             ``bytes``, or a ``"0x"`` hex string
``string``            ``str`` (hashed as UTF-8)
``T[]`` / ``T[k]``    ``list`` or ``tuple`` (exactly k items for ``T[k]``)
struct                a ``Mapping`` with exactly the struct's field names as keys
====================  =====================================================================

Any other value, an out-of-range integer, a missing field or an unknown field raises
:class:`TypedDataError` (a ``ValueError``) whose message names the offending field path, e.g.
``SessionGrant.envelope.permissions[2].selector: expected 4 bytes, got 3``.

The hashes equal ``eth_account.messages.encode_typed_data`` byte for byte (see the tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, cast

from sessionward.crypto.abi_json import StructFields, value_to_json
from sessionward.crypto.address import normalize_address
from sessionward.crypto.keccak import keccak256
from sessionward.crypto.solidity_types import (
    ELEMENTARY_NAMES,
    AbiType,
    ArrayType,
    FixedBytesType,
    IntType,
    Param,
    SignatureSyntaxError,
    StructType,
    UintType,
    base_type,
    is_identifier,
    parse_type,
)

__all__ = [
    "DOMAIN_TYPE",
    "TypedDataError",
    "TypedDataSchema",
    "domain_separator",
    "domain_type_fields",
    "typed_data_digest",
]

# A field encoder maps one Python value to its 32-byte EIP-712 ``encodeData`` word.
FieldEncoder = Callable[[Any], bytes]

_HEX_STRING = re.compile(r"0x(?:[0-9a-fA-F]{2})*")

_ZERO_PAD_12: Final = bytes(12)
_FALSE_WORD: Final = bytes(32)
_TRUE_WORD: Final = bytes(31) + b"\x01"


class TypedDataError(ValueError):
    """A schema or a message that cannot be hashed; ``path`` locates the offending field."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason

    def under(self, prefix: str) -> TypedDataError:
        """The same error seen from the enclosing struct or array ``prefix``."""
        if not self.path:
            return TypedDataError(prefix, self.reason)
        joiner = "" if self.path.startswith("[") else "."
        return TypedDataError(f"{prefix}{joiner}{self.path}", self.reason)


def _describe(value: Any) -> str:
    """A short description of a rejected value, never its full content (it may be large)."""
    return type(value).__name__


# --------------------------------------------------------------------------- atomic values


def _parse_hex(value: str, what: str) -> bytes:
    if _HEX_STRING.fullmatch(value) is None:
        raise TypedDataError("", f"expected {what} as 0x-prefixed hex, got a malformed string")
    return bytes.fromhex(value[2:])


@lru_cache(maxsize=4096)
def _address_from_string(value: str) -> bytes:
    # Cached: a grant names the same few addresses many times, and a checksummed spelling
    # costs a Keccak to validate. Refusals raise, so they are never cached.
    try:
        return bytes.fromhex(normalize_address(value)[2:])
    except ValueError as exc:
        raise TypedDataError("", str(exc)) from None


def address_bytes(value: Any) -> bytes:
    """The 20 bytes of an address value (see the module table for what is accepted)."""
    if isinstance(value, str):
        return _address_from_string(str(value))
    if isinstance(value, bytes | bytearray):
        if len(value) != 20:
            raise TypedDataError("", f"expected a 20-byte address, got {len(value)} bytes")
        return bytes(value)
    raise TypedDataError("", f"expected an address string or 20 bytes, got {_describe(value)}")


def _encode_address(value: Any) -> bytes:
    if type(value) is str:
        return _ZERO_PAD_12 + _address_from_string(value)
    return _ZERO_PAD_12 + address_bytes(value)


def _encode_bool(value: Any) -> bytes:
    if value is True:
        return _TRUE_WORD
    if value is False:
        return _FALSE_WORD
    raise TypedDataError("", f"expected a bool, got {_describe(value)}")


def _check_int(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise TypedDataError("", f"expected an int, got {_describe(value)}")


def _uint_encoder(bits: int) -> FieldEncoder:
    bound = 1 << bits

    def encode(value: Any) -> bytes:
        if type(value) is int and 0 <= value < bound:  # the common case, checked cheaply
            return value.to_bytes(32, "big")
        number = _check_int(value)
        if not 0 <= number < bound:
            raise TypedDataError("", f"value out of range for uint{bits}")
        return number.to_bytes(32, "big")

    return encode


def _int_encoder(bits: int) -> FieldEncoder:
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)

    def encode(value: Any) -> bytes:
        number = _check_int(value)
        if not low <= number < high:
            raise TypedDataError("", f"value out of range for int{bits}")
        return number.to_bytes(32, "big", signed=True)

    return encode


def _fixed_bytes(value: Any, size: int) -> bytes:
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str):
        raw = _parse_hex(value, f"bytes{size}")
    else:
        raise TypedDataError("", f"expected bytes{size} as bytes or hex, got {_describe(value)}")
    if len(raw) != size:
        raise TypedDataError("", f"expected {size} bytes, got {len(raw)}")
    return raw


def _fixed_bytes_encoder(size: int) -> FieldEncoder:
    padding = bytes(32 - size)

    def encode(value: Any) -> bytes:
        if type(value) is bytes and len(value) == size:
            return value + padding
        return _fixed_bytes(value, size) + padding

    return encode


def _dynamic_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return _parse_hex(value, "bytes")
    raise TypedDataError("", f"expected bytes or hex, got {_describe(value)}")


def _encode_dynamic_bytes(value: Any) -> bytes:
    return keccak256(_dynamic_bytes(value))


def _hash_text(value: str) -> bytes:
    try:
        return keccak256(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise TypedDataError("", "string is not encodable as UTF-8") from None


# Grants repeat the same function signatures, action classes and argument names many times;
# caching their hashes is the single biggest speed-up of a grant digest. Only short strings are
# cached so the cache's memory stays bounded whatever the input.
_CACHED_STRING_MAX: Final = 256
_string_hash = lru_cache(maxsize=4096)(_hash_text)

# The same memo for struct and array encodings, keyed by the exact preimage bytes (so it is a
# pure-function cache: no two inputs can share an entry). It pays off because a service hashes
# the same grant several times (issue, approval check, installation) and because grants of one
# backend share the same expanded permissions and rules. Bounded: 4096 entries of at most
# 512 bytes each.
_CACHED_PREIMAGE_MAX: Final = 512
_keccak_memo = lru_cache(maxsize=4096)(keccak256)


def _hash_words(preimage: bytes) -> bytes:
    if len(preimage) <= _CACHED_PREIMAGE_MAX:
        return _keccak_memo(preimage)
    return keccak256(preimage)


def _encode_string(value: Any) -> bytes:
    if isinstance(value, str):
        text = str(value)
        return _string_hash(text) if len(text) <= _CACHED_STRING_MAX else _hash_text(text)
    raise TypedDataError("", f"expected a str, got {_describe(value)}")


_NAMED_ENCODERS: Final[dict[str, FieldEncoder]] = {
    "address": _encode_address,
    "bool": _encode_bool,
    "string": _encode_string,
    "bytes": _encode_dynamic_bytes,
}


def _atomic_encoder(t: AbiType) -> FieldEncoder:
    if isinstance(t, UintType):
        return _uint_encoder(t.bits)
    if isinstance(t, IntType):
        return _int_encoder(t.bits)
    if isinstance(t, FixedBytesType):
        return _fixed_bytes_encoder(t.size)
    return _NAMED_ENCODERS[t.canonical]


# ------------------------------------------------------------------------------ the schema


def _field_type(expression: str) -> AbiType:
    """A field's type, read by the one Solidity type grammar in its EIP-712 form: canonical
    text only (no spaces, no ``uint`` alias), structs named, no inline tuples."""
    try:
        parsed = parse_type(expression, structs=True)
    except SignatureSyntaxError as exc:
        raise TypedDataError("", f"malformed type expression {expression!r} ({exc})") from None
    if parsed.canonical != expression:
        raise TypedDataError("", f"malformed type expression {expression!r} (not canonical)")
    return parsed


@dataclass(frozen=True, slots=True)
class _StructPlan:
    name: str
    encode_type: str
    type_hash: bytes
    field_names: tuple[str, ...]
    field_count: int
    pairs: tuple[tuple[str, FieldEncoder], ...]  # (field name, its encoder), in field order


class TypedDataSchema:
    """A set of EIP-712 struct types, checked and compiled once.

    ``types`` maps each struct name to its ordered ``(field type, field name)`` pairs. Every
    referenced struct must be defined; struct names may not shadow atomic types; field names
    are unique within a struct. An ``EIP712Domain`` entry, if present, is treated as any other
    struct. Instances are immutable and safe to share between threads.
    """

    def __init__(self, types: Mapping[str, Sequence[tuple[str, str]]]) -> None:
        self._fields: dict[str, tuple[tuple[str, str], ...]] = {}
        self._params: dict[str, tuple[Param, ...]] = {}
        for struct_name, fields in types.items():
            self._params[struct_name] = self._check_struct(struct_name, fields)
            self._fields[struct_name] = tuple((t, n) for t, n in fields)
        # Plans are built after every struct is known; struct encoders look plans up by name at
        # call time, which also makes recursive types work.
        self._plans: dict[str, _StructPlan] = {}
        for struct_name in self._fields:
            self._plans[struct_name] = self._build_plan(struct_name)

    # ---------------------------------------------------------------- construction helpers

    def _check_struct(
        self, struct_name: str, fields: Sequence[tuple[str, str]]
    ) -> tuple[Param, ...]:
        """The struct's fields as typed parameters, once its names and field types are valid."""
        if not is_identifier(struct_name):
            raise TypedDataError(struct_name, "struct name is not an identifier")
        if struct_name in ELEMENTARY_NAMES:
            raise TypedDataError(struct_name, "struct name shadows an atomic type")
        seen: set[str] = set()
        params: list[Param] = []
        for field_type, field_name in fields:
            if not is_identifier(field_name):
                raise TypedDataError(
                    f"{struct_name}.{field_name}", "field name is not an identifier"
                )
            if field_name in seen:
                raise TypedDataError(f"{struct_name}.{field_name}", "duplicate field name")
            seen.add(field_name)
            try:
                # Syntax only; struct references are checked once every struct is known.
                params.append(Param(field_name, _field_type(field_type)))
            except TypedDataError as error:
                raise error.under(f"{struct_name}.{field_name}") from None
        return tuple(params)

    def _dependencies(self, struct_name: str) -> list[str]:
        """Struct names reachable from ``struct_name`` (excluding itself), unsorted."""
        found: set[str] = set()
        pending = [struct_name]
        while pending:
            current = pending.pop()
            for param in self._params[current]:
                base = base_type(param.type)
                if not isinstance(base, StructType):
                    continue
                if base.name not in self._fields:
                    raise TypedDataError(f"{current}", f"undefined type {base.name!r}")
                if base.name not in found and base.name != struct_name:
                    found.add(base.name)
                    pending.append(base.name)
        return list(found)

    def _struct_signature(self, struct_name: str) -> str:
        inner = ",".join(f"{t} {n}" for t, n in self._fields[struct_name])
        return f"{struct_name}({inner})"

    def _build_plan(self, struct_name: str) -> _StructPlan:
        deps = sorted(self._dependencies(struct_name))
        encode_type = "".join(self._struct_signature(s) for s in [struct_name, *deps])
        names = tuple(n for _, n in self._fields[struct_name])
        return _StructPlan(
            name=struct_name,
            encode_type=encode_type,
            type_hash=keccak256(encode_type.encode("utf-8")),
            field_names=names,
            field_count=len(names),
            pairs=tuple((p.name or "", self._encoder(p.type)) for p in self._params[struct_name]),
        )

    def _encoder(self, t: AbiType) -> FieldEncoder:
        if isinstance(t, ArrayType):
            return _array_encoder(self._encoder(t.item), t.length)
        if isinstance(t, StructType):
            return self._struct_encoder(t.name)
        return _atomic_encoder(t)

    def _struct_encoder(self, struct_name: str) -> FieldEncoder:
        plans = self._plans

        def encode(value: Any) -> bytes:
            return _hash_with_plan(plans[struct_name], value)

        return encode

    def _plan(self, struct_name: str) -> _StructPlan:
        try:
            return self._plans[struct_name]
        except KeyError:
            raise TypedDataError(struct_name, "unknown struct type") from None

    # -------------------------------------------------------------------------- public API

    @property
    def struct_names(self) -> tuple[str, ...]:
        """The defined struct names, in definition order."""
        return tuple(self._fields)

    @property
    def struct_fields(self) -> StructFields:
        """Each struct's fields as typed parameters (what the JSON value codec reads)."""
        return self._params

    def fields(self, struct_name: str) -> tuple[tuple[str, str], ...]:
        """The ordered ``(field type, field name)`` pairs of ``struct_name``."""
        self._plan(struct_name)
        return self._fields[struct_name]

    def encode_type(self, struct_name: str) -> str:
        """EIP-712 ``encodeType``: the struct, then referenced structs in alphabetical order."""
        return self._plan(struct_name).encode_type

    def type_hash(self, struct_name: str) -> bytes:
        """``keccak256(encodeType)``."""
        return self._plan(struct_name).type_hash

    def hash_struct(self, primary_type: str, message: Mapping[str, Any]) -> bytes:
        """EIP-712 ``hashStruct(message)`` for ``primary_type``; raises :class:`TypedDataError`."""
        plan = self._plan(primary_type)
        try:
            return _hash_with_plan(plan, message)
        except TypedDataError as error:
            raise error.under(primary_type) from None

    def types_document(self, primary_type: str) -> dict[str, list[dict[str, str]]]:
        """The ``types`` member of an eth_signTypedData_v4 document: ``primary_type`` and the
        structs it references (and no others, as wallets derive the primary type from it)."""
        self._plan(primary_type)
        names = [primary_type, *sorted(self._dependencies(primary_type))]
        return {name: [{"name": n, "type": t} for t, n in self._fields[name]] for name in names}

    def message_document(self, primary_type: str, message: Mapping[str, Any]) -> dict[str, Any]:
        """The message as JSON-able data for a wallet: addresses EIP-55 checksummed, bytes as
        lower-case ``0x`` hex, integers as decimal strings. Validates like :meth:`hash_struct`."""
        self.hash_struct(primary_type, message)  # one validation path for both uses
        document = value_to_json(StructType(primary_type), message, structs=self._params)
        return cast(dict[str, Any], document)

    def abi_tuple(self, struct_name: str, message: Mapping[str, Any]) -> tuple[object, ...]:
        """``message`` as the ABI tuple of the same struct: fields in declared order, nested
        structs as tuples and arrays as tuples, other values as given (what a contract taking
        the struct is called with). Raises ``KeyError`` for a missing field."""
        return tuple(
            self._abi_value(p.type, message[p.name or ""]) for p in self._plan_params(struct_name)
        )

    def _abi_value(self, t: AbiType, value: Any) -> object:
        if isinstance(t, StructType):
            return self.abi_tuple(t.name, value)
        if isinstance(t, ArrayType):
            return tuple(self._abi_value(t.item, item) for item in value)
        return value

    def _plan_params(self, struct_name: str) -> tuple[Param, ...]:
        self._plan(struct_name)  # refuses an unknown struct
        return self._params[struct_name]


def _hash_with_plan(plan: _StructPlan, value: Any) -> bytes:
    try:
        # Fast path: one comprehension, no per-field bookkeeping. Any problem falls through to
        # the careful path below, which re-walks the fields to say which one is wrong.
        if type(value) is dict and len(value) == plan.field_count:
            return _hash_words(
                plan.type_hash + b"".join([encode(value[name]) for name, encode in plan.pairs])
            )
    except (TypedDataError, KeyError, TypeError, RecursionError):
        pass
    return _hash_with_plan_carefully(plan, value)


def _hash_with_plan_carefully(plan: _StructPlan, value: Any) -> bytes:
    if not isinstance(value, Mapping):
        raise TypedDataError(
            "", f"expected a mapping for struct {plan.name}, got {_describe(value)}"
        )
    words = [plan.type_hash]
    for name, encode in plan.pairs:
        try:
            item = value[name]
        except KeyError:
            raise TypedDataError(name, "missing field") from None
        try:
            words.append(encode(item))
        except TypedDataError as error:
            raise error.under(name) from None
        except RecursionError:
            raise TypedDataError(name, "value nested too deeply") from None
    if len(value) != plan.field_count:
        unknown = sorted(str(k) for k in value if k not in plan.field_names)
        raise TypedDataError("", f"unknown field(s) {unknown} for struct {plan.name}")
    return _hash_words(b"".join(words))


def _array_encoder(element: FieldEncoder, length: int | None) -> FieldEncoder:
    def encode(value: Any) -> bytes:
        if not isinstance(value, list | tuple):
            raise TypedDataError("", f"expected a list, got {_describe(value)}")
        if length is not None and len(value) != length:
            raise TypedDataError("", f"expected exactly {length} items, got {len(value)}")
        try:
            return _hash_words(b"".join([element(item) for item in value]))
        except TypedDataError:
            pass
        for index, item in enumerate(value):  # find and name the failing item
            try:
                element(item)
            except TypedDataError as error:
                raise error.under(f"[{index}]") from None
        raise AssertionError("unreachable: an item failed once and then succeeded")

    return encode


# ------------------------------------------------------------------------------ the domain

DOMAIN_TYPE: Final = (
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_DOMAIN_SCHEMA: Final = TypedDataSchema(
    {
        "EIP712Domain": [
            ("string", "name"),
            ("string", "version"),
            ("uint256", "chainId"),
            ("address", "verifyingContract"),
        ]
    }
)


def domain_type_fields() -> list[dict[str, str]]:
    """The ``EIP712Domain`` entry of an eth_signTypedData_v4 ``types`` member (a fresh list):
    the four fields of :data:`DOMAIN_TYPE`, in order."""
    return _DOMAIN_SCHEMA.types_document("EIP712Domain")["EIP712Domain"]


def domain_separator(name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    """``hashStruct(EIP712Domain{name, version, chainId, verifyingContract})``."""
    return _DOMAIN_SCHEMA.hash_struct(
        "EIP712Domain",
        {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": verifying_contract,
        },
    )


def typed_data_digest(domain_separator: bytes, struct_hash: bytes) -> bytes:
    """The EIP-712 signing digest ``keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct)``."""
    if len(domain_separator) != 32 or len(struct_hash) != 32:
        raise TypedDataError("", "domain separator and struct hash must be 32 bytes each")
    return keccak256(b"\x19\x01" + domain_separator + struct_hash)
