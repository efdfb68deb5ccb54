"""Solidity types: the one model of a type and the one grammar that reads type text.

Three readers of type text share this module: the strict ABI codec
(:mod:`sessionward.domain.abi`) for function signatures and argument types, the EIP-712 hasher
(:mod:`sessionward.crypto.eip712`) for struct field types, and through the JSON value codec
(:mod:`sessionward.crypto.abi_json`) the SDK's check of a grant document
(:mod:`sessionward.sdk.grants`). It lives in ``crypto`` because that is the lowest layer all
three may import: ``domain`` may import ``crypto`` but not the reverse, and the SDK may import
only ``crypto`` (and ``reasons``). Nothing here depends on anything but the standard library.

The grammar (:func:`parse_type`, :func:`parse_parameters`) reads:

- elementary types: ``address``, ``bool``, ``string``, ``bytes``, ``uintN``/``intN``
  (N = 8..256 in steps of 8), ``bytesN`` (N = 1..32), and the aliases ``uint``/``int``
  (= 256 bits; the canonical text spells the size out);
- tuples ``(T name, U name, …)`` with an optional ``tuple`` keyword, names optional and unique;
- array suffixes ``T[]`` and ``T[k]`` (k from 1 to :data:`MAX_FIXED_ARRAY_LENGTH`, no leading
  zeros), nested at most :data:`MAX_TYPE_DEPTH` deep;
- with ``structs=True`` (EIP-712), a word that names no elementary type names a struct
  (:class:`StructType`) and inline tuples are refused: EIP-712 types name their structs.

Bad text raises :class:`SignatureSyntaxError` (a ``ValueError``) naming the column.
Types are immutable, hashable values; ``canonical`` is the text a selector or ``encodeType``
preimage uses.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Final, NoReturn

__all__ = [
    "ADDRESS",
    "BOOL",
    "BYTES",
    "ELEMENTARY_NAMES",
    "MAX_FIXED_ARRAY_LENGTH",
    "MAX_TYPE_DEPTH",
    "STRING",
    "UINT256",
    "WORD",
    "AbiType",
    "AddressType",
    "ArrayType",
    "BoolType",
    "BytesType",
    "FixedBytesType",
    "IntType",
    "Param",
    "SignatureSyntaxError",
    "StringType",
    "StructType",
    "TupleType",
    "UintType",
    "base_type",
    "is_identifier",
    "parse_parameters",
    "parse_type",
]

WORD: Final = 32
#: Deepest nesting of tuples and array dimensions a type may have (keeps recursion bounded).
MAX_TYPE_DEPTH: Final = 32
#: Largest fixed array length ``T[k]`` accepted in a type (no real contract comes close).
MAX_FIXED_ARRAY_LENGTH: Final = 65_535


class SignatureSyntaxError(ValueError):
    """A type or function signature text that is not valid ABI (configuration input)."""


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


@dataclass(frozen=True, slots=True)
class StructType(AbiType):
    """A struct named rather than spelled out: an EIP-712 field type such as ``Rule``.

    Its fields live in the schema that defines the name; it has no ABI layout of its own, so the
    ABI codec refuses it.
    """

    name: str

    @property
    def canonical(self) -> str:
        return self.name


ADDRESS: Final = AddressType()
BOOL: Final = BoolType()
BYTES: Final = BytesType()
STRING: Final = StringType()
UINT256: Final = UintType(256)


def _elementary_table() -> dict[str, AbiType]:
    table: dict[str, AbiType] = {
        "address": ADDRESS,
        "bool": BOOL,
        "string": STRING,
        "bytes": BYTES,
        # Solidity aliases; the canonical form spells out 256.
        "uint": UINT256,
        "int": IntType(256),
    }
    for bits in range(8, 257, 8):
        table[f"uint{bits}"] = UintType(bits)
        table[f"int{bits}"] = IntType(bits)
    for size in range(1, 33):
        table[f"bytes{size}"] = FixedBytesType(size)
    return table


_ELEMENTARY: Final = _elementary_table()
#: The canonical names of the elementary types (the aliases ``uint`` and ``int`` excluded).
ELEMENTARY_NAMES: Final = frozenset(name for name, t in _ELEMENTARY.items() if t.canonical == name)


def base_type(t: AbiType) -> AbiType:
    """The type under every array dimension of ``t`` (``Rule`` for ``Rule[][2]``)."""
    while isinstance(t, ArrayType):
        t = t.item
    return t


# ---------------------------------------------------------------------------------------------
# The grammar

_TOKEN = re.compile(
    r"\s*(?:(?P<word>[A-Za-z_$][A-Za-z0-9_$]*)|(?P<num>[0-9]+)|(?P<punct>[()\[\],]))"
)
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")
# Data-location keywords that human-readable signatures copied from Solidity may carry.
_LOCATIONS = frozenset({"memory", "calldata", "storage"})


def is_identifier(text: str) -> bool:
    """True iff ``text`` is a Solidity identifier (a function, struct, field or parameter name)."""
    return _IDENTIFIER.match(text) is not None


class _Parser:
    """Recursive-descent parser over the tokens of one type or signature text."""

    def __init__(self, text: str, *, structs: bool = False) -> None:
        self.text = text
        self.structs = structs
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
        base = self.base_expr(depth)
        while self.peek() == ("punct", "["):
            depth += 1
            if depth > MAX_TYPE_DEPTH:
                self.fail(f"type nested deeper than {MAX_TYPE_DEPTH} levels")
            self.index += 1
            base = ArrayType(base, self.array_length())
        return base

    def base_expr(self, depth: int) -> AbiType:
        """A tuple or a named type: what array suffixes apply to."""
        tok = self.peek()
        if tok == ("word", "tuple") and self.peek(1) == ("punct", "(") and not self.structs:
            self.index += 1
            tok = self.peek()
        if tok == ("punct", "("):
            if self.structs:
                self.fail("an EIP-712 type names its structs; inline tuples are not types")
            params = self.param_list(depth + 1)
            if not params:
                self.fail("an empty tuple is not an ABI type")
            return TupleType(params)
        if tok is None or tok[0] != "word":
            self.fail("expected a type")
        found = _ELEMENTARY.get(tok[1])
        if found is None:
            if not self.structs:
                self.fail(f"unknown type {tok[1]!r}")
            found = StructType(tok[1])
        self.index += 1
        return found

    def array_length(self) -> int | None:
        """The ``k`` of ``[k]`` (None for ``[]``), with the closing bracket consumed."""
        length: int | None = None
        nxt = self.peek()
        if nxt is not None and nxt[0] == "num":
            if nxt[1] == "0":
                self.fail("a zero-length array is not a type")
            if nxt[1].startswith("0"):
                self.fail(
                    f"fixed array length {nxt[1]!r} must be a positive number without leading zeros"
                )
            length = int(nxt[1])
            if length > MAX_FIXED_ARRAY_LENGTH:
                self.fail(f"fixed array length {length} exceeds {MAX_FIXED_ARRAY_LENGTH}")
            self.index += 1
        self.expect("]")
        return length

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


def parse_type(text: str, *, structs: bool = False) -> AbiType:
    """Parse one type, e.g. ``uint24``, ``address[]``, ``(address to, uint256 amount)[2]``.

    Accepts ``uint``/``int`` (aliases of the 256-bit types) and an optional ``tuple`` keyword
    before a parenthesised tuple. With ``structs=True`` (EIP-712 field types) an unknown word is
    a :class:`StructType` and tuples are refused. Raises :class:`SignatureSyntaxError` on
    anything else.
    """
    if not isinstance(text, str):
        raise SignatureSyntaxError(f"a type must be text, not {type(text).__name__}")
    parser = _Parser(text, structs=structs)
    result = parser.type_expr(0)
    if not parser.at_end():
        parser.fail("unexpected text after the type")
    return result


def parse_parameters(text: str) -> tuple[str, tuple[Param, ...]]:
    """The name and parameters of a human-readable signature, e.g. ``transfer(address to,uint256)``.

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
    return tok[1], params
