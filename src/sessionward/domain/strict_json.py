"""Strict JSON: what every request body and envelope goes through.

Refused: duplicate keys at any depth, floats (including ``1e3`` and ``1.0``), ``NaN`` and
``Infinity``, integers outside ``[-2**256, 2**256)``, nesting deeper than :data:`MAX_DEPTH`, and
documents over the caller's size limit. The error is always :class:`MalformedJson` with
``INPUT_MALFORMED`` or ``PAYLOAD_TOO_LARGE``.

``loads(..., safe_integers=True)`` (what every API request body uses) also refuses integers
outside ``[-(2**53 - 1), 2**53 - 1]``, the range every JSON implementation reads exactly: an
amount or a ``uint`` argument above it must be sent as a decimal string (docs/protocol.md,
"One amount rule"). One rule for every field, so no client's JSON library can round an amount
on its way in.
"""

from __future__ import annotations

import json
from typing import Any

from sessionward.reasons import ReasonCode, SessionWardError

MAX_DEPTH = 32
_JSON_WHITESPACE = " \t\n\r"  # RFC 8259 allows only these around a document
DEFAULT_MAX_BYTES = 256 * 1024
_INT_BOUND = 2**256
MAX_SAFE_INTEGER = 2**53 - 1


class MalformedJson(SessionWardError):
    """The document is not strict JSON."""


def _no_float(text: str) -> Any:
    raise MalformedJson(
        ReasonCode.INPUT_MALFORMED, f"numbers must be integers or decimal strings, got {text[:32]}"
    )


def _no_constant(text: str) -> Any:
    raise MalformedJson(ReasonCode.INPUT_MALFORMED, f"{text} is not allowed")


def _bounded_int(text: str) -> int:
    if len(text) > 80:
        raise MalformedJson(ReasonCode.INPUT_MALFORMED, "integer too large")
    value = int(text)
    if not -_INT_BOUND <= value < _INT_BOUND:
        raise MalformedJson(ReasonCode.INPUT_MALFORMED, "integer out of the 256-bit range")
    return value


def _safe_int(text: str) -> int:
    value = _bounded_int(text)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise MalformedJson(
            ReasonCode.INPUT_MALFORMED,
            "JSON integers above 2**53 - 1 are refused: send amounts as decimal strings",
        )
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedJson(ReasonCode.INPUT_MALFORMED, f"duplicate key {key[:64]!r}")
        result[key] = value
    return result


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys,
    parse_float=_no_float,
    parse_int=_bounded_int,
    parse_constant=_no_constant,
)
_SAFE_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys,
    parse_float=_no_float,
    parse_int=_safe_int,
    parse_constant=_no_constant,
)


def _depth_ok(raw: str) -> bool:
    # Nesting never exceeds the number of opening brackets (inside strings or not), counted
    # in C: a document with few of them (every API body) needs no walk.
    if raw.count("[") + raw.count("{") <= MAX_DEPTH:
        return True
    depth = 0
    in_string = False
    escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def loads(
    raw: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, safe_integers: bool = False
) -> Any:
    """Parse ``raw`` strictly; raise :class:`MalformedJson` on anything but strict JSON (with
    ``safe_integers``, also on an integer beyond ``±(2**53 - 1)``)."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise MalformedJson(ReasonCode.PAYLOAD_TOO_LARGE, f"document larger than {max_bytes} bytes")
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedJson(ReasonCode.INPUT_MALFORMED, "document is not UTF-8") from None
    else:
        text = raw
    if not _depth_ok(text):
        raise MalformedJson(ReasonCode.INPUT_MALFORMED, f"nesting deeper than {MAX_DEPTH}")
    try:
        decoder = _SAFE_DECODER if safe_integers else _DECODER
        value, end = decoder.raw_decode(text.strip(_JSON_WHITESPACE))
    except MalformedJson:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedJson(
            ReasonCode.INPUT_MALFORMED, f"not valid JSON: {str(exc)[:80]}"
        ) from None
    if end != len(text.strip(_JSON_WHITESPACE)):
        raise MalformedJson(ReasonCode.INPUT_MALFORMED, "trailing data after the JSON document")
    return value
