"""Request bodies: bounded reading, strict JSON, and shape validation naming the field.

Order matters: the size limit is enforced on the declared ``Content-Length`` *and* while
reading (a lying or absent length cannot bypass it); the bytes are then parsed by
:func:`sessionward.domain.strict_json.loads` (duplicate keys, floats, NaN and integers beyond
``2**53 - 1`` refused: amounts travel as decimal strings) before any model sees them; only then is the document validated against the method's request model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from sessionward.domain.strict_json import MalformedJson, loads
from sessionward.reasons import ReasonCode

from .errors import invalid, too_large

ModelT = TypeVar("ModelT", bound=BaseModel)


def declared_length(headers: Mapping[str, str], limit: int) -> int | None:
    """The declared ``Content-Length`` (None when absent); 413 above ``limit``, 400 if garbled."""
    value = headers.get("content-length")
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise invalid("Content-Length is not a decimal length", reason="Content-Length")
    length = int(value)
    if length > limit:
        raise too_large(limit)
    return length


async def read_bounded(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """Concatenate the body's chunks, refusing (413) as soon as more than ``limit`` arrived."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def parse_document(raw: bytes, limit: int) -> dict[str, Any]:
    """Strict JSON whose top level is an object; every string valid Unicode (no lone
    surrogates, which cannot be stored or hashed as UTF-8)."""
    try:
        doc = loads(raw, max_bytes=limit, safe_integers=True)
    except MalformedJson as exc:
        if exc.code is ReasonCode.PAYLOAD_TOO_LARGE:
            raise too_large(limit) from None
        raise invalid(exc.message, reason="body") from None
    if not isinstance(doc, dict):
        raise invalid("the request body must be a JSON object", reason="body")
    # The bytes decoded as strict UTF-8, so a string can hold a lone surrogate only through a
    # \u escape: without one, there is nothing to look for.
    if b"\\u" in raw:
        _check_text(doc, "")
    return doc


def _check_text(value: object, path: str) -> None:
    if isinstance(value, str):
        _check_string(value, path)
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            _check_string(key, where)
            _check_text(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, f"{path}[{index}]")


def _check_string(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"{path or 'body'}: not valid Unicode text", reason=path or "body") from None


def validate(model: type[ModelT], doc: Mapping[str, Any]) -> ModelT:
    """``doc`` as ``model`` (unknown fields and wrong types refused); 400 naming the field."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        raise invalid(f"{field}: {message}", reason=field) from None
