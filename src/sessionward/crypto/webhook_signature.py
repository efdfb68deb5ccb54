"""The signature of SessionWard's alert webhooks: Standard Webhooks, asymmetric (Ed25519) form.

One home for the format, shared by the sender (:mod:`sessionward.service.webhooks`) and the
receiver's verifier (:mod:`sessionward.sdk.webhooks`); docs/protocol.md section 8.6. Every
delivery carries three headers (Standard Webhooks 1.0, "Webhook headers")::

    webhook-id: evt_…              the event id: the same on every retry of one event
    webhook-timestamp: 1700000000  unix seconds of this attempt, decimal
    webhook-signature: v1a,<base64 of the 64-byte Ed25519 signature>

and the signature is pure Ed25519 (RFC 8032) over the signed content
``{webhook-id}.{webhook-timestamp}.{raw body}`` — the header values as sent (ASCII), full stops
between, then the body bytes exactly as sent. ``v1a`` is the specification's identifier of an
Ed25519 signature; the header is a space-separated list of ``version,signature`` entries so a
key rotation can send two. Event ids never contain a full stop (the specification asks that
they cannot, so the signed content splits one way only). Public keys are the 32 raw bytes in
standard base64, optionally with the specification's ``whpk_`` prefix.

Depends only on the standard library and ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "EVENT_ID_HEADER",
    "PUBLIC_KEY_PREFIX",
    "SIGNATURE_HEADER",
    "SIGNATURE_VERSION",
    "TIMESTAMP_HEADER",
    "WebhookFormatError",
    "format_signature",
    "is_event_id",
    "parse_public_key",
    "parse_signatures",
    "sign_webhook",
    "signed_content",
    "verifies",
]

EVENT_ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"
SIGNATURE_VERSION: Final = "v1a"
PUBLIC_KEY_PREFIX: Final = "whpk_"
SIGNATURE_BYTES: Final = 64
PUBLIC_KEY_BYTES: Final = 32

_EVENT_ID = re.compile(r"[A-Za-z0-9_:-]{1,128}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class WebhookFormatError(ValueError):
    """Text that is not what the format allows (a signature list, a key, an id)."""


def is_event_id(value: str) -> bool:
    """1-128 characters of ``A-Z a-z 0-9 _ : -`` (no full stop, no space)."""
    return _EVENT_ID.fullmatch(value) is not None


def signed_content(event_id: str, timestamp: str, body: bytes) -> bytes:
    """``{event_id}.{timestamp}.{body}``: the bytes a delivery's signature covers.

    Raises :class:`WebhookFormatError` for an event id or timestamp the format does not allow.
    """
    if not is_event_id(event_id):
        raise WebhookFormatError("an event id is 1-128 characters of A-Z a-z 0-9 _ : -")
    if _TIMESTAMP.fullmatch(timestamp) is None:
        raise WebhookFormatError("a timestamp is unix seconds, 1-12 decimal digits")
    return f"{event_id}.{timestamp}.".encode("ascii") + body


def format_signature(signature: bytes) -> str:
    """One ``webhook-signature`` entry: ``v1a,<base64>``."""
    if len(signature) != SIGNATURE_BYTES:
        raise WebhookFormatError("an Ed25519 signature is 64 bytes")
    return f"{SIGNATURE_VERSION},{base64.b64encode(signature).decode('ascii')}"


def sign_webhook(
    keys: Ed25519PrivateKey | Sequence[Ed25519PrivateKey],
    event_id: str,
    timestamp: str,
    body: bytes,
) -> str:
    """The ``webhook-signature`` value: one ``v1a`` entry per key, space-separated (several
    keys while receivers move from an old key to a new one)."""
    content = signed_content(event_id, timestamp, body)
    signers = [keys] if isinstance(keys, Ed25519PrivateKey) else list(keys)
    return " ".join(format_signature(key.sign(content)) for key in signers)


def parse_signatures(value: str) -> list[bytes]:
    """Every ``v1a`` signature of a ``webhook-signature`` value (other versions are skipped, as
    the specification lets a receiver do). Raises :class:`WebhookFormatError` for an entry that
    is not ``version,base64``, a ``v1a`` entry that is not 64 bytes, or no ``v1a`` entry."""
    found = []
    for entry in value.split():
        version, comma, encoded = entry.partition(",")
        if not comma or not version:
            raise WebhookFormatError("a signature entry is version,base64")
        if version != SIGNATURE_VERSION:
            continue
        raw = _b64(encoded)
        if len(raw) != SIGNATURE_BYTES:
            raise WebhookFormatError("a v1a signature is the base64 of 64 bytes")
        found.append(raw)
    if not found:
        raise WebhookFormatError("no v1a signature")
    return found


def parse_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from the base64 of its 32 bytes, ``whpk_`` prefix optional."""
    body = text.strip().removeprefix(PUBLIC_KEY_PREFIX)
    raw = _b64(body)
    if len(raw) != PUBLIC_KEY_BYTES:
        raise WebhookFormatError("a public key is the base64 of 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def verifies(keys: Iterable[Ed25519PublicKey], signatures: Iterable[bytes], content: bytes) -> bool:
    """True iff one of ``signatures`` is a valid signature of ``content`` by one of ``keys``."""
    signature_list = list(signatures)
    return any(_verifies(key, sig, content) for key in keys for sig in signature_list)


def _verifies(key: Ed25519PublicKey, signature: bytes, content: bytes) -> bool:
    try:
        key.verify(signature, content)
    except InvalidSignature:
        return False
    return True


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""
