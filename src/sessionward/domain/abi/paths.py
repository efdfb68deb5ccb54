"""Argument paths: naming one value inside a signature's arguments (``params.tokenIn``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from sessionward.crypto.solidity_types import WORD, AbiType, ArrayType, TupleType

from .errors import ArgumentIndexOutOfRange, ArgumentPathError
from .signatures import FunctionSignature

__all__ = [
    "ArgumentPath",
    "compile_argument_path",
    "resolve_argument",
    "static_word_offset",
    "validate_argument_path",
]

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


# A step lands on (index taken, type found, word of that type while it is reachable in place).
_Step = tuple[int, AbiType, int | None]


def _field_step(current: AbiType, field: str, word: int | None, path: str) -> _Step:
    """Step into the tuple field named (or numbered) ``field``."""
    if not isinstance(current, TupleType):
        raise ArgumentPathError(f"{path!r}: {current.canonical} has no field {field!r}")
    if field.isdigit():
        index = _parse_index(field, path)
        if index >= len(current.components):
            raise ArgumentPathError(f"{path!r}: {current.canonical} has no field {index}")
    else:
        found = current.index_of(field)
        if found is None:
            raise ArgumentPathError(f"{path!r}: no field named {field!r}")
        index = found
    nxt = current.components[index].type
    # A component's head sits in place where its tuple starts; a dynamic component's head is
    # only an offset, so what it points to is not reachable in place.
    if word is None or nxt.is_dynamic:
        return index, nxt, None
    return index, nxt, word + sum(c.type.head_size for c in current.components[:index]) // WORD


def _element_step(current: AbiType, index_text: str, word: int | None, path: str) -> _Step:
    """Step into the array element ``[index_text]``."""
    if not isinstance(current, ArrayType):
        raise ArgumentPathError(f"{path!r}: {current.canonical} is not an array")
    index = _parse_index(index_text, path)
    if current.length is not None and index >= current.length:
        raise ArgumentPathError(f"{path!r}: index {index} is past {current.canonical}")
    nxt = current.item
    # Only a static fixed array lays its elements out in place.
    if word is None or current.is_dynamic:
        return index, nxt, None
    return index, nxt, word + index * nxt.static_size // WORD


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
            index, current, word = _field_step(current, field_text, word, path)
        else:
            assert index_text is not None
            index, current, word = _element_step(current, index_text, word, path)
        steps.append(index)
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
