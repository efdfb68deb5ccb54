"""What decoding and encoding share: the constant words and the labels of tuple components."""

from __future__ import annotations

from typing import Final

from sessionward.crypto.solidity_types import WORD, AbiType, TupleType

ZERO_WORD: Final = bytes(WORD)
ONE_WORD: Final = (1).to_bytes(WORD, "big")
ZERO_12: Final = bytes(12)


def tuple_items(t: TupleType, *, top: bool) -> list[tuple[AbiType, str]]:
    """Components with their path labels: ``name``/``0`` at the top level, ``.name``/``.0`` inside."""
    dot = "" if top else "."
    return [
        (c.type, dot + (c.name if c.name is not None else str(i)))
        for i, c in enumerate(t.components)
    ]
