"""Reading revert payloads: ``Error(string)`` and ``Panic(uint256)``.

The SessionAccount contract reverts with the reason code itself as its ``Error(string)`` text
(docs/protocol.md section 4), so the decoded text is what the service compares with
:class:`sessionward.reasons.ReasonCode`.
"""

from __future__ import annotations

from typing import Final

from sessionward.domain.abi import CalldataMalformed, decode_arguments, parse_signature

__all__ = ["decode_revert_reason"]

_ERROR = parse_signature("Error(string)")
_PANIC = parse_signature("Panic(uint256)")
_MAX_REASON_CHARS: Final = 1024


def decode_revert_reason(data: bytes | None) -> str | None:
    """The text of an ``Error(string)`` payload, ``"Panic(0x..)"`` for a panic, else ``None``
    (empty data, custom errors, anything not canonically encoded). Long texts are cut to
    1024 characters so a hostile contract cannot flood logs."""
    if not data or len(data) < 4:
        return None
    selector, body = data[:4], data[4:]
    try:
        if selector == _ERROR.selector:
            (text,) = decode_arguments(_ERROR, body)
            return str(text)[:_MAX_REASON_CHARS]
        if selector == _PANIC.selector:
            (code,) = decode_arguments(_PANIC, body)
            return f"Panic(0x{int(str(code)):02x})"
    except CalldataMalformed:
        return None
    return None
