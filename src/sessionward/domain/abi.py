"""A strict Solidity ABI codec, written for deciding what calldata *means*.

SessionWard authorizes calls by reading their arguments, so the decoder must give every byte
string at most one meaning. It therefore accepts **only the canonical encoding** (the one the
Solidity ABI specification's encoder produces) and refuses everything else with
:class:`CalldataMalformed`:

- every offset equals exactly where the canonical encoder puts that tail: tails follow the heads
  in component order, with no gap, overlap, backward or shared offset;
- every padding bit is zero: the high 12 bytes of an ``address``, the high bits of ``uintN``,
  proper sign extension of ``intN``, ``bool`` only 0 or 1, the right padding of ``bytesN``, and the
  tail padding of ``bytes`` and ``string``;
- ``string`` is valid UTF-8; lengths fit in the data; nothing trails the canonical end;
- work is bounded by the data: a length is checked against the bytes that remain before anything
  is allocated, and since canonical tails never share bytes, every element consumes its own
  32 bytes at least, so decoding is linear in the input.

With those rules decoding is the exact inverse of :func:`encode_arguments`: for any ``data``,
either ``encode_arguments(sig, decode_arguments(sig, data)) == data`` or decoding raises.

Decoded values: ``address`` → lower-case ``0x`` str; ``uintN``/``intN`` → int; ``bool`` → bool;
``bytesN`` and ``bytes`` → bytes; ``string`` → str; arrays and tuples → tuple.

Type and signature text is configuration, not calldata: bad text raises
:class:`SignatureSyntaxError`, a bad argument path :class:`ArgumentPathError`, a value that
cannot be encoded :class:`AbiEncodeError` (all :class:`ValueError`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NoReturn, cast

from ..crypto.keccak import keccak256
from .reasons import ReasonCode, SessionWardError

__all__ = [
    "ADDRESS",
    "BOOL",
    "BYTES",
    "STRING",
    "UINT256",
    "AbiEncodeError",
    "AbiType",
    "AddressType",
    "ArgumentIndexOutOfRange",
    "ArgumentPath",
    "ArgumentPathError",
    "ArrayType",
    "BoolType",
    "BytesType",
    "CalldataError",
    "CalldataMalformed",
    "FixedBytesType",
    "FunctionSignature",
    "IntType",
    "Param",
    "SignatureSyntaxError",
    "StringType",
    "TupleCodec",
    "TupleType",
    "UintType",
    "compile_argument_path",
    "decode_arguments",
    "decode_tuple",
    "encode_arguments",
    "encode_call",
    "encode_tuple",
    "encode_word",
    "parse_signature",
    "parse_type",
    "resolve_argument",
    "static_word_offset",
    "validate_argument_path",
]

WORD = 32
#: Deepest nesting of tuples and array dimensions a type may have (keeps recursion bounded).
MAX_TYPE_DEPTH = 32
#: Largest fixed array length ``T[k]`` accepted in a type (no real contract comes close).
MAX_FIXED_ARRAY_LENGTH = 65_535
_ZERO_WORD = bytes(WORD)
_ONE_WORD = (1).to_bytes(WORD, "big")
_ZERO_12 = bytes(12)


# ---------------------------------------------------------------------------------------------
# Errors


class CalldataError(SessionWardError):
    """Base of every refusal of the *shape* of calldata (malformed, empty batch, call type…)."""


class CalldataMalformed(CalldataError):
    """Calldata that is not the canonical encoding of what it claims to be.

    The message names what was wrong and where (byte position and argument path).
    """

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.CALLDATA_MALFORMED, message)


class SignatureSyntaxError(ValueError):
    """A type or function signature text that is not valid ABI (configuration input)."""


class ArgumentPathError(ValueError):
    """An argument path that does not name anything in a signature."""


class ArgumentIndexOutOfRange(ArgumentPathError):
    """A valid path whose dynamic-array index is past the decoded array's length."""


class AbiEncodeError(ValueError):
    """A value that does not fit the ABI type it is to be encoded as."""


class _Fault(Exception):
    """Internal decoding failure; becomes :class:`CalldataMalformed` at the public boundary.

    ``path`` collects argument-path segments innermost first while the fault propagates out.
    """

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position
        self.path: list[str] = []

    def describe(self, what: str) -> str:
        where = f"at byte {self.position}"
        if self.path:
            where += f" (in {''.join(reversed(self.path))})"
        return f"{what}: {self.reason} {where}"


class _EncodeFault(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


# ---------------------------------------------------------------------------------------------
# Types


class AbiType(ABC):
    """An ABI type. Instances are immutable and hashable.

    ``canonical`` is the type as written in a selector preimage (``uint256``, ``(address,bytes)[]``).
    A *static* type is encoded in place in ``static_size`` bytes; a dynamic one takes a 32-byte
    offset in its enclosing head and is encoded in the tail.
    """

    __slots__ = ()

    @property
    @abstractmethod
    def canonical(self) -> str:
        """The type as written in a selector preimage."""

    @property
    def is_dynamic(self) -> bool:
        return False

    @property
    def static_size(self) -> int:
        """Bytes the value takes in place when the type is static (32 for dynamic types)."""
        return WORD

    @property
    def head_size(self) -> int:
        """Bytes the type takes in its enclosing head: its size if static, else one offset word."""
        return WORD if self.is_dynamic else self.static_size

    @property
    def is_word(self) -> bool:
        """True for static elementary types: the value is exactly one 32-byte word."""
        return False

    def __str__(self) -> str:
        return self.canonical


@dataclass(frozen=True, slots=True)
class UintType(AbiType):
    bits: int

    @property
    def canonical(self) -> str:
        return f"uint{self.bits}"

    @property
    def is_word(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class IntType(AbiType):
    bits: int

    @property
    def canonical(self) -> str:
        return f"int{self.bits}"

    @property
    def is_word(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class AddressType(AbiType):
    @property
    def canonical(self) -> str:
        return "address"

    @property
    def is_word(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class BoolType(AbiType):
    @property
    def canonical(self) -> str:
        return "bool"

    @property
    def is_word(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class FixedBytesType(AbiType):
    size: int

    @property
    def canonical(self) -> str:
        return f"bytes{self.size}"

    @property
    def is_word(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class BytesType(AbiType):
    @property
    def canonical(self) -> str:
        return "bytes"

    @property
    def is_dynamic(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class StringType(AbiType):
    @property
    def canonical(self) -> str:
        return "string"

    @property
    def is_dynamic(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class ArrayType(AbiType):
    """``item[]`` when ``length`` is None, else ``item[length]``."""

    item: AbiType
    length: int | None

    @property
    def canonical(self) -> str:
        return f"{self.item.canonical}[{'' if self.length is None else self.length}]"

    @property
    def is_dynamic(self) -> bool:
        return self.length is None or self.item.is_dynamic

    @property
    def static_size(self) -> int:
        if self.is_dynamic:
            return WORD
        assert self.length is not None
        return self.length * self.item.static_size


@dataclass(frozen=True, slots=True)
class Param:
    """A named (or unnamed) parameter of a function or component of a tuple."""

    name: str | None
    type: AbiType


@dataclass(frozen=True, slots=True)
class TupleType(AbiType):
    """A tuple (Solidity struct); component names are optional and only serve argument paths."""

    components: tuple[Param, ...]

    @property
    def canonical(self) -> str:
        return "(" + ",".join(c.type.canonical for c in self.components) + ")"

    @property
    def is_dynamic(self) -> bool:
        return any(c.type.is_dynamic for c in self.components)

    @property
    def static_size(self) -> int:
        if self.is_dynamic:
            return WORD
        return sum(c.type.static_size for c in self.components)

    def index_of(self, name: str) -> int | None:
        for i, c in enumerate(self.components):
            if c.name == name:
                return i
        return None


ADDRESS = AddressType()
BOOL = BoolType()
BYTES = BytesType()
STRING = StringType()
UINT256 = UintType(256)


# ---------------------------------------------------------------------------------------------
# Parsing type and signature text

_TOKEN = re.compile(
    r"\s*(?:(?P<word>[A-Za-z_$][A-Za-z0-9_$]*)|(?P<num>[0-9]+)|(?P<punct>[()\[\],]))"
)
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")
# Data-location keywords that human-readable signatures copied from Solidity may carry.
_LOCATIONS = frozenset({"memory", "calldata", "storage"})


def _elementary(word: str) -> AbiType | None:
    """The elementary type a word names, or None when it names none."""
    if word == "address":
        return ADDRESS
    if word == "bool":
        return BOOL
    if word == "string":
        return STRING
    if word == "bytes":
        return BYTES
    if word in ("uint", "int"):  # Solidity aliases; the canonical form spells out 256
        return UINT256 if word == "uint" else IntType(256)
    for prefix, make in (("uint", UintType), ("int", IntType)):
        if word.startswith(prefix):
            digits = word[len(prefix) :]
            if digits.isdigit() and digits[0] != "0":
                bits = int(digits)
                if 8 <= bits <= 256 and bits % 8 == 0:
                    return make(bits)
            return None
    if word.startswith("bytes"):
        digits = word[5:]
        if digits.isdigit() and digits[0] != "0" and 1 <= int(digits) <= 32:
            return FixedBytesType(int(digits))
    return None


class _Parser:
    """Recursive-descent parser over the tokens of one type or signature text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                if text[pos:].strip() == "":
                    break
                col = pos + len(text[pos:]) - len(text[pos:].lstrip())
                self.fail(f"unexpected character {text[col]!r}", col)
            kind = m.lastgroup
            assert kind is not None
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.index = 0

    def fail(self, message: str, column: int | None = None) -> NoReturn:
        if column is None:
            column = self.tokens[self.index][2] if self.index < len(self.tokens) else len(self.text)
        raise SignatureSyntaxError(f"{message} at column {column} of {self.text!r}")

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.index + offset
        if i < len(self.tokens):
            kind, value, _ = self.tokens[i]
            return kind, value
        return None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            self.fail("unexpected end of text")
        self.index += 1
        return tok

    def expect(self, punct: str) -> None:
        tok = self.peek()
        if tok != ("punct", punct):
            self.fail(f"expected {punct!r}")
        self.index += 1

    def at_end(self) -> bool:
        return self.index >= len(self.tokens)

    def type_expr(self, depth: int) -> AbiType:
        if depth > MAX_TYPE_DEPTH:
            self.fail(f"type nested deeper than {MAX_TYPE_DEPTH} levels")
        tok = self.peek()
        base: AbiType
        if tok == ("word", "tuple") and self.peek(1) == ("punct", "("):
            self.index += 1
            tok = self.peek()
        if tok == ("punct", "("):
            params = self.param_list(depth + 1)
            if not params:
                self.fail("an empty tuple is not an ABI type")
            base = TupleType(params)
        elif tok is not None and tok[0] == "word":
            found = _elementary(tok[1])
            if found is None:
                self.fail(f"unknown type {tok[1]!r}")
            base = found
            self.index += 1
        else:
            self.fail("expected a type")
        while self.peek() == ("punct", "["):
            depth += 1
            if depth > MAX_TYPE_DEPTH:
                self.fail(f"type nested deeper than {MAX_TYPE_DEPTH} levels")
            self.index += 1
            length: int | None = None
            nxt = self.peek()
            if nxt is not None and nxt[0] == "num":
                if nxt[1].startswith("0"):
                    self.fail(
                        f"fixed array length {nxt[1]!r} must be a positive number without leading zeros"
                    )
                length = int(nxt[1])
                if length > MAX_FIXED_ARRAY_LENGTH:
                    self.fail(f"fixed array length {length} exceeds {MAX_FIXED_ARRAY_LENGTH}")
                self.index += 1
            self.expect("]")
            base = ArrayType(base, length)
        return base

    def param_list(self, depth: int) -> tuple[Param, ...]:
        self.expect("(")
        params: list[Param] = []
        seen: set[str] = set()
        if self.peek() == ("punct", ")"):
            self.index += 1
            return ()
        while True:
            ptype = self.type_expr(depth)
            name: str | None = None
            tok = self.peek()
            if tok is not None and tok[0] == "word" and tok[1] in _LOCATIONS:
                self.index += 1
                tok = self.peek()
            if tok is not None and tok[0] == "word":
                name = tok[1]
                if name in seen:
                    self.fail(f"duplicate name {name!r}")
                seen.add(name)
                self.index += 1
            params.append(Param(name, ptype))
            sep = self.take()
            if sep == ("punct", ")"):
                return tuple(params)
            if sep != ("punct", ","):
                self.index -= 1
                self.fail("expected ',' or ')'")


def parse_type(text: str) -> AbiType:
    """Parse one ABI type, e.g. ``uint24``, ``address[]``, ``(address to, uint256 amount)[2]``.

    Accepts ``uint``/``int`` (aliases of the 256-bit types) and an optional ``tuple`` keyword
    before a parenthesised tuple. Raises :class:`SignatureSyntaxError` on anything else.
    """
    if not isinstance(text, str):
        raise SignatureSyntaxError(f"a type must be text, not {type(text).__name__}")
    parser = _Parser(text)
    result = parser.type_expr(0)
    if not parser.at_end():
        parser.fail("unexpected text after the type")
    return result


# ---------------------------------------------------------------------------------------------
# Decoding: readers compiled once per type

_StaticReader = Callable[[bytes, int], object]
_DynamicReader = Callable[[bytes, int], tuple[object, int]]


def _uint_reader(bits: int) -> _StaticReader:
    if bits == 256:

        def read_uint256(data: bytes, p: int) -> object:
            return int.from_bytes(data[p : p + WORD], "big")

        return read_uint256

    def read_uint(data: bytes, p: int) -> object:
        value = int.from_bytes(data[p : p + WORD], "big")
        if value >> bits:
            raise _Fault(f"uint{bits} has non-zero high-order padding", p)
        return value

    return read_uint


def _int_reader(bits: int) -> _StaticReader:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def read_int(data: bytes, p: int) -> object:
        value = int.from_bytes(data[p : p + WORD], "big", signed=True)
        if bits != 256 and not low <= value <= high:
            raise _Fault(f"int{bits} is not properly sign-extended", p)
        return value

    return read_int


def _read_address(data: bytes, p: int) -> object:
    if data[p : p + 12] != _ZERO_12:
        raise _Fault("address has non-zero high-order padding", p)
    return "0x" + data[p + 12 : p + WORD].hex()


def _read_bool(data: bytes, p: int) -> object:
    word = data[p : p + WORD]
    if word == _ZERO_WORD:
        return False
    if word == _ONE_WORD:
        return True
    raise _Fault("bool is neither 0 nor 1", p)


def _fixed_bytes_reader(size: int) -> _StaticReader:
    padding = bytes(WORD - size)

    def read_fixed_bytes(data: bytes, p: int) -> object:
        if data[p + size : p + WORD] != padding:
            raise _Fault(f"bytes{size} has non-zero right padding", p)
        return data[p : p + size]

    return read_fixed_bytes


def _static_sequence_reader(items: Sequence[tuple[AbiType, str]]) -> _StaticReader:
    """Reader of a static tuple or static fixed array: components laid out back to back."""
    plan: list[tuple[int, _StaticReader, str]] = []
    offset = 0
    for t, label in items:
        plan.append((offset, _static_reader(t), label))
        offset += t.static_size

    def read_static_sequence(data: bytes, p: int) -> object:
        out: list[object] = []
        for off, read, label in plan:
            try:
                out.append(read(data, p + off))
            except _Fault as fault:
                fault.path.append(label)
                raise
        return tuple(out)

    return read_static_sequence


def _static_reader(t: AbiType) -> _StaticReader:
    """Reader of a static type at a position whose whole static size is known to be in bounds."""
    if isinstance(t, UintType):
        return _uint_reader(t.bits)
    if isinstance(t, IntType):
        return _int_reader(t.bits)
    if isinstance(t, AddressType):
        return _read_address
    if isinstance(t, BoolType):
        return _read_bool
    if isinstance(t, FixedBytesType):
        return _fixed_bytes_reader(t.size)
    if isinstance(t, TupleType):
        return _static_sequence_reader(_tuple_items(t, top=False))
    if isinstance(t, ArrayType) and t.length is not None:
        return _static_sequence_reader([(t.item, f"[{i}]") for i in range(t.length)])
    raise TypeError(f"{t.canonical} is not a static type")  # unreachable for parsed types


def _tuple_items(t: TupleType, *, top: bool) -> list[tuple[AbiType, str]]:
    """Components with their path labels: ``name``/``0`` at the top level, ``.name``/``.0`` inside."""
    dot = "" if top else "."
    return [
        (c.type, dot + (c.name if c.name is not None else str(i)))
        for i, c in enumerate(t.components)
    ]


def _expect_offset(data: bytes, p: int, expected: int) -> None:
    """The offset word at ``p`` must be exactly the canonical ``expected`` offset."""
    word = data[p : p + WORD]
    if word != expected.to_bytes(WORD, "big"):
        found = int.from_bytes(word, "big")
        raise _Fault(f"offset {found} is not canonical (the tail starts at {expected})", p)


def _sequence_reader(items: Sequence[tuple[AbiType, str]]) -> _DynamicReader:
    """Reader of a dynamic tuple (or fixed array of dynamic items): heads, then tails in order."""
    head = sum(t.head_size for t, _ in items)
    plan: list[tuple[int, _StaticReader | None, _DynamicReader | None, str]] = []
    offset = 0
    for t, label in items:
        if t.is_dynamic:
            plan.append((offset, None, _dynamic_reader(t), label))
        else:
            plan.append((offset, _static_reader(t), None, label))
        offset += t.head_size

    def read_sequence(data: bytes, start: int) -> tuple[object, int]:
        if len(data) - start < head:
            raise _Fault(
                f"truncated: the {head}-byte head has only {len(data) - start} bytes", start
            )
        cursor = start + head
        out: list[object] = []
        for off, read_static, read_dynamic, label in plan:
            try:
                if read_dynamic is None:
                    out.append(cast(_StaticReader, read_static)(data, start + off))
                else:
                    _expect_offset(data, start + off, cursor - start)
                    value, cursor = read_dynamic(data, cursor)
                    out.append(value)
            except _Fault as fault:
                fault.path.append(label)
                raise
        return tuple(out), cursor

    return read_sequence


def _length_word(data: bytes, pos: int, what: str) -> int:
    if len(data) - pos < WORD:
        raise _Fault(f"truncated: missing the {what} length word", pos)
    return int.from_bytes(data[pos : pos + WORD], "big")


def _read_raw_bytes(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    length = _length_word(data, pos, what)
    start = pos + WORD
    remaining = len(data) - start
    if length > remaining:
        raise _Fault(f"{what} length {length} exceeds the {remaining} bytes that remain", pos)
    end = start + ((length + WORD - 1) // WORD) * WORD
    if end > len(data):
        raise _Fault(f"truncated: {what} padding is missing", start + length)
    if data[start + length : end] != bytes(end - start - length):
        raise _Fault(f"{what} has non-zero tail padding", start + length)
    return data[start : start + length], end


def _read_bytes(data: bytes, pos: int) -> tuple[object, int]:
    return _read_raw_bytes(data, pos, "bytes")


def _read_string(data: bytes, pos: int) -> tuple[object, int]:
    raw, end = _read_raw_bytes(data, pos, "string")
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise _Fault(f"string is not valid UTF-8 ({exc.reason})", pos + WORD + exc.start) from None


def _dynamic_array_reader(item: AbiType) -> _DynamicReader:
    stride = item.head_size
    read_static = None if item.is_dynamic else _static_reader(item)
    read_dynamic = _dynamic_reader(item) if item.is_dynamic else None

    def read_array(data: bytes, pos: int) -> tuple[object, int]:
        count = _length_word(data, pos, "array")
        base = pos + WORD
        remaining = len(data) - base
        # Bound the work before allocating anything: every element needs its own head.
        if count * stride > remaining:
            raise _Fault(
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
        except _Fault as fault:
            fault.path.append(f"[{i}]")
            raise

    return read_array


def _dynamic_reader(t: AbiType) -> _DynamicReader:
    """Reader of a dynamic type whose encoding starts at the given position (its tail)."""
    if isinstance(t, BytesType):
        return _read_bytes
    if isinstance(t, StringType):
        return _read_string
    if isinstance(t, ArrayType):
        if t.length is None:
            return _dynamic_array_reader(t.item)
        return _sequence_reader([(t.item, f"[{i}]") for i in range(t.length)])
    if isinstance(t, TupleType):
        return _sequence_reader(_tuple_items(t, top=False))
    raise TypeError(f"{t.canonical} is not a dynamic type")  # unreachable for parsed types


# ---------------------------------------------------------------------------------------------
# Encoding: encoders compiled once per type

_Encoder = Callable[[object], bytes]
_ADDRESS_TEXT = re.compile(r"0x[0-9a-fA-F]{40}\Z")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _uint_encoder(bits: int) -> _Encoder:
    limit = 1 << bits

    def encode_uint(value: object) -> bytes:
        if not _is_int(value):
            raise _EncodeFault(f"uint{bits} needs an int, got {type(value).__name__}")
        number = cast(int, value)
        if not 0 <= number < limit:
            raise _EncodeFault(f"{number} is out of range for uint{bits}")
        return number.to_bytes(WORD, "big")

    return encode_uint


def _int_encoder(bits: int) -> _Encoder:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def encode_int(value: object) -> bytes:
        if not _is_int(value):
            raise _EncodeFault(f"int{bits} needs an int, got {type(value).__name__}")
        number = cast(int, value)
        if not low <= number <= high:
            raise _EncodeFault(f"{number} is out of range for int{bits}")
        return number.to_bytes(WORD, "big", signed=True)

    return encode_int


def _encode_address(value: object) -> bytes:
    if not isinstance(value, str) or _ADDRESS_TEXT.match(value) is None:
        raise _EncodeFault(f"address needs '0x' and 40 hex digits, got {value!r}")
    return _ZERO_12 + bytes.fromhex(value[2:])


def _encode_bool(value: object) -> bytes:
    if not isinstance(value, bool):
        raise _EncodeFault(f"bool needs a bool, got {type(value).__name__}")
    return _ONE_WORD if value else _ZERO_WORD


def _fixed_bytes_encoder(size: int) -> _Encoder:
    def encode_fixed_bytes(value: object) -> bytes:
        if not isinstance(value, bytes | bytearray) or len(value) != size:
            raise _EncodeFault(f"bytes{size} needs exactly {size} bytes, got {value!r}")
        return bytes(value) + bytes(WORD - size)

    return encode_fixed_bytes


def _pad_right(raw: bytes) -> bytes:
    return len(raw).to_bytes(WORD, "big") + raw + bytes(-len(raw) % WORD)


def _encode_bytes(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise _EncodeFault(f"bytes needs bytes, got {type(value).__name__}")
    return _pad_right(bytes(value))


def _encode_string(value: object) -> bytes:
    if not isinstance(value, str):
        raise _EncodeFault(f"string needs a str, got {type(value).__name__}")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise _EncodeFault("string is not encodable as UTF-8") from None
    return _pad_right(raw)


def _as_items(value: object, count: int | None, what: str) -> Sequence[object]:
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence):
        raise _EncodeFault(f"{what} needs a list or tuple, got {type(value).__name__}")
    if count is not None and len(value) != count:
        raise _EncodeFault(f"{what} needs {count} items, got {len(value)}")
    return value


def _sequence_encoder(items: Sequence[tuple[AbiType, str]]) -> Callable[[Sequence[object]], bytes]:
    """Canonical encoder of a sequence: heads in order, then the dynamic tails in order."""
    head = sum(t.head_size for t, _ in items)
    plan = [(t.is_dynamic, _encoder(t), label) for t, label in items]

    def encode_sequence(values: Sequence[object]) -> bytes:
        heads: list[bytes] = []
        tails: list[bytes] = []
        tail_offset = head
        for (dynamic, encode, label), value in zip(plan, values, strict=True):
            try:
                encoded = encode(value)
            except _EncodeFault as fault:
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


def _tuple_values(t: TupleType, value: object) -> Sequence[object]:
    """A tuple's values from a sequence, or from a mapping keyed by component names."""
    if isinstance(value, Mapping):
        names = [c.name for c in t.components]
        if None in names:
            raise _EncodeFault("a mapping can only encode a tuple whose components are all named")
        if set(value) != set(names):
            raise _EncodeFault(f"tuple needs exactly the keys {names}, got {sorted(value)}")
        return [value[name] for name in names]
    return _as_items(value, len(t.components), "tuple")


def _encoder(t: AbiType) -> _Encoder:
    if isinstance(t, UintType):
        return _uint_encoder(t.bits)
    if isinstance(t, IntType):
        return _int_encoder(t.bits)
    if isinstance(t, AddressType):
        return _encode_address
    if isinstance(t, BoolType):
        return _encode_bool
    if isinstance(t, FixedBytesType):
        return _fixed_bytes_encoder(t.size)
    if isinstance(t, BytesType):
        return _encode_bytes
    if isinstance(t, StringType):
        return _encode_string
    if isinstance(t, TupleType):
        encode_components = _sequence_encoder(_tuple_items(t, top=False))
        tuple_type = t

        def encode_tuple_value(value: object) -> bytes:
            return encode_components(_tuple_values(tuple_type, value))

        return encode_tuple_value
    if isinstance(t, ArrayType):
        item_encoder = _encoder(t.item)
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
    raise TypeError(f"cannot encode {t!r}")


def _encode_item(encode: _Encoder, value: object, index: int) -> bytes:
    try:
        return encode(value)
    except _EncodeFault as fault:
        fault.path.append(f"[{index}]")
        raise


# ---------------------------------------------------------------------------------------------
# Compiled tuple codecs (a function's argument list is a top-level tuple)


class TupleCodec:
    """Strict decoder and canonical encoder of one top-level tuple (``abi.encode`` of its
    components), compiled once: build it at import or configuration time and reuse it."""

    __slots__ = ("_dynamic", "_encode", "_read_dynamic", "_read_static", "_size", "_type")

    def __init__(self, t: TupleType) -> None:
        items = _tuple_items(t, top=True)
        self._type = t
        self._dynamic = t.is_dynamic
        self._size = sum(c.type.head_size for c in t.components)
        self._read_static = None if self._dynamic else _static_sequence_reader(items)
        self._read_dynamic = _sequence_reader(items) if self._dynamic else None
        self._encode = _sequence_encoder(items)

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
                        raise _Fault(
                            f"truncated: expected {self._size} bytes, got {len(data)}", len(data)
                        )
                    raise _Fault(
                        f"{len(data) - self._size} trailing bytes after the canonical end",
                        self._size,
                    )
                return cast(tuple[object, ...], self._read_static(data, 0))
            assert self._read_dynamic is not None
            value, end = self._read_dynamic(data, 0)
            if end != len(data):
                raise _Fault(f"{len(data) - end} trailing bytes after the canonical end", end)
            return cast(tuple[object, ...], value)
        except _Fault as fault:
            raise CalldataMalformed(fault.describe(what)) from None

    def encode(self, values: object) -> bytes:
        """Canonical encoding of ``values`` (a sequence, or a mapping by component names)."""
        try:
            return self._encode(_tuple_values(self._type, values))
        except _EncodeFault as fault:
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


# ---------------------------------------------------------------------------------------------
# Function signatures


@dataclass(frozen=True, slots=True)
class FunctionSignature:
    """A function's name and parameters; ``canonical`` and ``selector`` are derived from them.

    Create it once (usually with :func:`parse_signature`) and reuse it: the argument codec is
    compiled at construction.
    """

    name: str
    params: tuple[Param, ...]
    canonical: str = field(init=False)
    selector: bytes = field(init=False)
    _codec: TupleCodec = field(init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        # Cheap and consistent with equality (equal signatures share name and canonical text);
        # signatures key the argument-path cache, so hashing must not walk every parameter.
        return hash((self.name, self.canonical))

    def __post_init__(self) -> None:
        if _IDENTIFIER.match(self.name) is None:
            raise SignatureSyntaxError(f"{self.name!r} is not a function name")
        args = TupleType(self.params)
        canonical = self.name + args.canonical
        object.__setattr__(self, "canonical", canonical)
        object.__setattr__(self, "selector", keccak256(canonical.encode("ascii"))[:4])
        object.__setattr__(self, "_codec", TupleCodec(args))

    @property
    def args_type(self) -> TupleType:
        """The parameters as one tuple type."""
        return TupleType(self.params)


@lru_cache(maxsize=1024)
def parse_signature(text: str) -> FunctionSignature:
    """Parse a human-readable signature, e.g. ``transfer(address to,uint256 amount)``.

    Argument names are optional (and must be unique per parameter list); an optional leading
    ``function`` keyword and data-location keywords (``memory``, ``calldata``) are tolerated.
    Raises :class:`SignatureSyntaxError` on bad text.
    """
    if not isinstance(text, str):
        raise SignatureSyntaxError(f"a signature must be text, not {type(text).__name__}")
    parser = _Parser(text)
    if parser.peek() == ("word", "function") and parser.peek(1) not in (None, ("punct", "(")):
        parser.index += 1
    tok = parser.peek()
    if tok is None or tok[0] != "word":
        parser.fail("expected a function name")
    parser.index += 1
    params = parser.param_list(0)
    if not parser.at_end():
        parser.fail("unexpected text after the parameter list")
    return FunctionSignature(tok[1], params)


def decode_arguments(signature: FunctionSignature, args: bytes) -> tuple[object, ...]:
    """Strictly decode the calldata after the 4-byte selector into one value per parameter.

    Raises only :class:`CalldataMalformed` (see the module contract for what is refused).
    """
    return signature._codec.decode(args, f"arguments of {signature.canonical}")


def encode_arguments(signature: FunctionSignature, values: object) -> bytes:
    """Canonical encoding of the arguments (without selector). Raises :class:`AbiEncodeError`."""
    return signature._codec.encode(values)


def encode_call(signature: FunctionSignature, values: object) -> bytes:
    """Full calldata: selector ‖ canonical arguments."""
    return signature.selector + signature._codec.encode(values)


def encode_word(abi_type: AbiType, value: object) -> bytes:
    """The 32-byte ABI word of a static elementary value (``address``, ``uintN``, ``bool``…)."""
    if not abi_type.is_word:
        raise AbiEncodeError(f"{abi_type.canonical} is not a one-word static type")
    try:
        return _encoder(abi_type)(value)
    except _EncodeFault as fault:
        raise AbiEncodeError(f"{abi_type.canonical}: {fault.reason}") from None


# ---------------------------------------------------------------------------------------------
# Argument paths

_PATH_HEAD = re.compile(r"([A-Za-z_$][A-Za-z0-9_$]*|[0-9]+)")
_PATH_STEP = re.compile(r"\.([A-Za-z_$][A-Za-z0-9_$]*|[0-9]+)|\[([0-9]+)\]")


@dataclass(frozen=True, slots=True)
class ArgumentPath:
    """A validated path into a signature's arguments.

    ``steps`` are the indices to follow from the argument tuple; ``type`` is the type found
    there; ``word_offset`` is the index of the 32-byte word (counted from the first byte after
    the selector) that holds the value when it is one static word reachable without following
    any offset, else None.
    """

    text: str
    steps: tuple[int, ...]
    type: AbiType
    word_offset: int | None

    def read(self, values: Sequence[object]) -> object:
        """The value at this path in decoded arguments.

        Raises :class:`ArgumentIndexOutOfRange` when a dynamic array is shorter than the path needs.
        """
        current: object = values
        for depth, step in enumerate(self.steps):
            try:
                current = cast(Sequence[object], current)[step]
            except (IndexError, TypeError, KeyError):
                raise ArgumentIndexOutOfRange(
                    f"{self.text!r}: no element {step} at step {depth + 1} of the decoded value"
                ) from None
        return current


def _parse_index(text: str, path: str) -> int:
    if len(text) > 1 and text.startswith("0"):
        raise ArgumentPathError(f"{path!r}: index {text!r} has leading zeros")
    return int(text)


@lru_cache(maxsize=4096)
def compile_argument_path(signature: FunctionSignature, path: str) -> ArgumentPath:
    """Validate ``path`` against ``signature`` (grant time) and precompute how to read it.

    Path syntax: a parameter name or index (``to``, ``0``), then any number of tuple fields
    (``.tokenIn`` or ``.1``) and array elements (``[0]``). Raises :class:`ArgumentPathError`.
    """
    if not isinstance(path, str):
        raise ArgumentPathError(f"an argument path must be text, not {type(path).__name__}")
    m = _PATH_HEAD.match(path)
    if m is None:
        raise ArgumentPathError(f"{path!r} does not start with a parameter name or index")
    steps: list[int] = []
    current: AbiType = TupleType(signature.params)
    # word is the static word index of `current` while every step stayed in static heads.
    word: int | None = 0
    field_text: str | None = m.group(1)
    index_text: str | None = None
    pos = m.end()
    while True:
        if field_text is not None:
            if not isinstance(current, TupleType):
                raise ArgumentPathError(
                    f"{path!r}: {current.canonical} has no field {field_text!r}"
                )
            if field_text.isdigit():
                index = _parse_index(field_text, path)
                if index >= len(current.components):
                    raise ArgumentPathError(f"{path!r}: {current.canonical} has no field {index}")
            else:
                found = current.index_of(field_text)
                if found is None:
                    raise ArgumentPathError(f"{path!r}: no field named {field_text!r}")
                index = found
            nxt = current.components[index].type
            # A component's head sits in place where its tuple starts; a dynamic component's
            # head is only an offset, so what it points to is not reachable in place.
            if word is not None and not nxt.is_dynamic:
                word += sum(c.type.head_size for c in current.components[:index]) // WORD
            else:
                word = None
        else:
            assert index_text is not None
            if not isinstance(current, ArrayType):
                raise ArgumentPathError(f"{path!r}: {current.canonical} is not an array")
            index = _parse_index(index_text, path)
            if current.length is not None and index >= current.length:
                raise ArgumentPathError(f"{path!r}: index {index} is past {current.canonical}")
            nxt = current.item
            # Only a static fixed array lays its elements out in place.
            if word is not None and not current.is_dynamic:
                word += index * nxt.static_size // WORD
            else:
                word = None
        steps.append(index)
        current = nxt
        if pos == len(path):
            break
        m = _PATH_STEP.match(path, pos)
        if m is None:
            raise ArgumentPathError(f"{path!r}: cannot read the path from column {pos}")
        field_text, index_text = m.group(1), m.group(2)
        pos = m.end()
    return ArgumentPath(path, tuple(steps), current, word if current.is_word else None)


def validate_argument_path(signature: FunctionSignature, path: str) -> AbiType:
    """The type found at ``path`` in ``signature``'s arguments; :class:`ArgumentPathError` if none."""
    return compile_argument_path(signature, path).type


def resolve_argument(signature: FunctionSignature, values: Sequence[object], path: str) -> object:
    """The decoded argument at ``path`` (see :func:`compile_argument_path` for the syntax)."""
    return compile_argument_path(signature, path).read(values)


def static_word_offset(signature: FunctionSignature, path: str) -> int | None:
    """Index of the word holding the argument at ``path`` when reachable without any offset.

    That is a static one-word value among the top-level heads, inside static tuples or at a
    fixed index of static fixed-size arrays. None for anything behind an offset or wider than
    one word. (Whether a rule may be enforced on chain, e.g. for signed integers, is the
    caller's decision.)
    """
    return compile_argument_path(signature, path).word_offset
