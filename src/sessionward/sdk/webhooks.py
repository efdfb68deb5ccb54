"""Verifying SessionWard's signed alert webhooks on the receiving side.

Depends only on the standard library, ``cryptography`` and
:mod:`sessionward.crypto.webhook_signature` (the same), so a receiver can vendor the two files.

A delivery is a ``POST`` whose body is JSON ``{"eventId", "type": "alert", "alert": {...}}``,
signed in the Standard Webhooks format with an Ed25519 key (``v1a``): the headers
``webhook-id`` (the event id), ``webhook-timestamp`` (unix seconds) and
``webhook-signature: v1a,<base64 Ed25519 signature>``, the signature covering exactly::

    event id + b"." + timestamp + b"." + raw body

(the header values as received, ASCII; :mod:`sessionward.crypto.webhook_signature` is the one
home of the format, so a stock Standard Webhooks verifier with Ed25519 support works too).
Configure the receiver with the service's webhook public key (the base64 of its 32 raw bytes,
``whpk_`` prefix optional) and call :func:`verify_webhook` on the raw body bytes *before*
parsing them::

    cache = ReplayCache()
    event = verify_webhook(PUBLIC_KEY_B64, request.headers, raw_body, seen=cache)

Retries of one event carry the same event id (and body) with a fresh timestamp and signature:
the service retries only when it did not get a 2xx. With a :class:`ReplayCache`, a second
delivery of an event id already accepted is refused with ``EVENT_REPLAYED`` — answer it 2xx (you
have it); if you could not process an event you accepted, :meth:`ReplayCache.forget` it and
answer 5xx so that the retry is accepted.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sessionward.crypto.webhook_signature import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookFormatError,
    is_event_id,
    parse_public_key,
    parse_signatures,
    signed_content,
    verifies,
)

__all__ = [
    "BODY_MALFORMED",
    "DEFAULT_TOLERANCE_S",
    "EVENT_ID_HEADER",
    "EVENT_ID_MALFORMED",
    "EVENT_ID_MISMATCH",
    "EVENT_REPLAYED",
    "HEADER_MISSING",
    "PUBLIC_KEY_MALFORMED",
    "SIGNATURE_HEADER",
    "SIGNATURE_INVALID",
    "SIGNATURE_MALFORMED",
    "TIMESTAMP_HEADER",
    "TIMESTAMP_MALFORMED",
    "TIMESTAMP_OUT_OF_TOLERANCE",
    "ReplayCache",
    "WebhookVerificationError",
    "verify_webhook",
]

DEFAULT_TOLERANCE_S: Final = 300

# Stable codes of WebhookVerificationError.code
HEADER_MISSING: Final = "HEADER_MISSING"
TIMESTAMP_MALFORMED: Final = "TIMESTAMP_MALFORMED"
TIMESTAMP_OUT_OF_TOLERANCE: Final = "TIMESTAMP_OUT_OF_TOLERANCE"
EVENT_ID_MALFORMED: Final = "EVENT_ID_MALFORMED"
SIGNATURE_MALFORMED: Final = "SIGNATURE_MALFORMED"
SIGNATURE_INVALID: Final = "SIGNATURE_INVALID"
BODY_MALFORMED: Final = "BODY_MALFORMED"
EVENT_ID_MISMATCH: Final = "EVENT_ID_MISMATCH"
EVENT_REPLAYED: Final = "EVENT_REPLAYED"
PUBLIC_KEY_MALFORMED: Final = "PUBLIC_KEY_MALFORMED"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class WebhookVerificationError(ValueError):
    """The delivery is not an authentic, fresh, first delivery of a SessionWard event.
    ``code`` is one of this module's stable codes (``SIGNATURE_INVALID``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ReplayCache:
    """Event ids already accepted, each remembered until its delivery could no longer pass the
    timestamp check (``timestamp + tolerance``). Thread-safe; bounded to ``max_entries`` (the
    oldest entries are forgotten first when full)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._until)

    def __contains__(self, event_id: object) -> bool:
        with self._lock:
            return event_id in self._until

    def remember(self, event_id: str, *, until: float, now: float) -> bool:
        """Record ``event_id`` until ``until``; False (and nothing changes) if it is already
        remembered and not expired at ``now``."""
        with self._lock:
            self._prune(now)
            if event_id in self._until:
                return False
            self._until[event_id] = until
            while len(self._until) > self._max:
                self._until.popitem(last=False)
            return True

    def forget(self, event_id: str) -> None:
        """Drop ``event_id`` (a receiver that could not process an accepted event)."""
        with self._lock:
            self._until.pop(event_id, None)

    def _prune(self, now: float) -> None:
        expired = [e for e, until in self._until.items() if until < now]
        for event_id in expired:
            del self._until[event_id]


def verify_webhook(
    public_key_b64: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    seen: ReplayCache | None = None,
) -> dict[str, Any]:
    """Verify one delivery and return its event (the parsed body).

    ``public_key_b64``: the service's key, or several during a key rotation (any may sign).
    ``headers``: the request headers (names compared case-insensitively). ``body``: the raw
    body bytes exactly as received. ``now``: unix seconds (default: the clock). The timestamp
    must be within ``tolerance_s`` of ``now`` either way. With ``seen``, an event id accepted
    before (within the window) is refused, and this one is remembered.

    Raises :class:`WebhookVerificationError` otherwise; nothing is remembered then.
    """
    keys = _public_keys(public_key_b64)
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = _header(lowered, TIMESTAMP_HEADER)
    event_id = _header(lowered, EVENT_ID_HEADER)
    signature_field = _header(lowered, SIGNATURE_HEADER)
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookVerificationError(TIMESTAMP_MALFORMED, "timestamp must be unix seconds")
    if not is_event_id(event_id):
        raise WebhookVerificationError(EVENT_ID_MALFORMED, "event id has unexpected characters")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_s:
        raise WebhookVerificationError(
            TIMESTAMP_OUT_OF_TOLERANCE, f"timestamp is more than {tolerance_s} s from now"
        )
    try:
        signatures = parse_signatures(signature_field)
    except WebhookFormatError as exc:
        raise WebhookVerificationError(SIGNATURE_MALFORMED, str(exc)) from None
    if not verifies(keys, signatures, signed_content(event_id, timestamp, body)):
        raise WebhookVerificationError(SIGNATURE_INVALID, "no signature verifies")
    event = _event(body)
    if event.get("eventId") != event_id:
        raise WebhookVerificationError(
            EVENT_ID_MISMATCH, "the body's eventId differs from the header"
        )
    # Only an authentic delivery reaches the cache, so forgeries cannot fill it.
    if seen is not None and not seen.remember(
        event_id, until=int(timestamp) + tolerance_s, now=current
    ):
        raise WebhookVerificationError(EVENT_REPLAYED, f"event {event_id} was already accepted")
    return event


def _public_keys(value: str | Sequence[str]) -> list[Ed25519PublicKey]:
    texts = [value] if isinstance(value, str) else list(value)
    if not texts:
        raise WebhookVerificationError(PUBLIC_KEY_MALFORMED, "no public key given")
    try:
        return [parse_public_key(text) for text in texts]
    except WebhookFormatError as exc:
        raise WebhookVerificationError(PUBLIC_KEY_MALFORMED, str(exc)) from None


def _header(lowered: Mapping[str, str], name: str) -> str:
    value = lowered.get(name.lower())
    if not value:
        raise WebhookVerificationError(HEADER_MISSING, f"missing {name} header")
    return value.strip()


def _event(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (duplicate keys refused: two readers must see one event)."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document = dict(pairs)
        if len(document) != len(pairs):
            raise ValueError("duplicate key")
        return document

    try:
        event = json.loads(body.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError):
        raise WebhookVerificationError(BODY_MALFORMED, "the body is not a JSON object") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise WebhookVerificationError(BODY_MALFORMED, "the body is not an event")
    return event
