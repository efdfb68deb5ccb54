"""Signed alert webhooks (docs/design.md section 9): every alert is POSTed as JSON to each configured
URL, signed with the service's Ed25519 webhook key, from a background worker.

Wire format, version 1
----------------------
Body: UTF-8 JSON, compact, built once per alert — the same bytes on every attempt and to every
URL::

    {"eventId": "evt_…", "type": "alert",
     "alert": {"id", "at", "rule", "severity", "sessionId", "walletId", "credentialId",
               "detail", "actionTaken", "actionAt"}}

Headers of every attempt (Standard Webhooks; the format's one home is
:mod:`sessionward.crypto.webhook_signature`)::

    Content-Type: application/json
    webhook-id: <eventId>                              the same on every attempt
    webhook-timestamp: <unix seconds, decimal>         fresh on every attempt
    webhook-signature: v1a,<base64 of the 64-byte Ed25519 signature>   fresh on every attempt

The signature is Ed25519 (RFC 8032, pure) with the webhook key over the exact bytes::

    <event id header value, ASCII> + b"." + <timestamp header value, ASCII> + b"." + <raw body>

so a receiver verifies the body bytes it received before parsing them, and the timestamp and
the event id cannot be swapped between deliveries. :func:`sessionward.sdk.webhooks.verify_webhook`
is the receiver's side; any Standard Webhooks verifier that knows ``v1a`` works as well.

Delivery: 2xx is delivered; 408, 429, 5xx, timeouts and connection errors are retried with
exponential backoff and jitter (after the n-th failure ``backoff_base_s * 2**(n-1)``, capped at
``backoff_max_s``, scaled by a random factor in [0.5, 1]; a ``Retry-After`` in seconds on a
retried answer is honoured up to the cap) until ``max_attempts`` attempts were made; any other
status (other 4xx; 3xx, as redirects are not followed) is a permanent failure. Retries keep the event id and the body; the timestamp and signature are per
attempt. Alerts wait in a bounded in-memory queue (``queue_size`` deliveries, counting those in
flight) served by ``workers`` threads, so raising an alert never waits on a receiver; when the
queue is full the alert's deliveries are dropped and counted (the alert itself is in the store).

The signing key: ``$SESSIONWARD_WEBHOOK_KEY`` (the base64 of a 32-byte Ed25519 private key), else
the file ``<data_dir>/webhook.key`` (the same base64 text), created 0600 on first run and refused
if group or others can read it. Only the public key (base64 of its 32 raw bytes) is ever shown;
receivers are configured with it.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
import json
import logging
import os
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sessionward.crypto.webhook_signature import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign_webhook,
)
from sessionward.store.alerts import AlertRecord
from sessionward.vault.key_files import read_private_key_file

from .config import ConfigError
from .ids import new_id

_log = logging.getLogger(__name__)

WEBHOOK_KEY_ENV: Final = "SESSIONWARD_WEBHOOK_KEY"
WEBHOOK_KEY_FILE: Final = "webhook.key"
USER_AGENT: Final = "sessionward-webhooks/1"
_KEY_BYTES: Final = 32
_RETRY_STATUSES: Final = frozenset({408, 429})

DeliveryState = Literal["pending", "delivered", "failed"]
AttemptOutcome = Literal["delivered", "retry", "failed"]


# --- the signing key ----------------------------------------------------------------------


class WebhookKeyError(Exception):
    """The webhook key is malformed or unsafely stored (the message never contains it)."""


class WebhookSigningKey:
    """The service's Ed25519 webhook key. Signs preimages; shows only its public key."""

    __slots__ = ("_key", "_public")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def __repr__(self) -> str:
        return f"WebhookSigningKey(public={self.public_key_b64})"

    __str__ = __repr__

    @classmethod
    def generate(cls) -> WebhookSigningKey:
        """A fresh key (tests; a key that is not saved is lost)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_text(cls, value: str, *, source: str = WEBHOOK_KEY_ENV) -> WebhookSigningKey:
        """Parse the base64 of a 32-byte private key; ``source`` names it in errors."""
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != _KEY_BYTES:
            raise WebhookKeyError(f"{source} must be the base64 of 32 bytes") from None
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @property
    def public_key(self) -> bytes:
        """The 32 raw bytes of the public key."""
        return self._public

    @property
    def public_key_b64(self) -> str:
        """The public key as receivers are configured with it: standard base64 of 32 bytes."""
        return base64.b64encode(self._public).decode("ascii")

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)

    def sign_webhook(self, event_id: str, timestamp: str, body: bytes) -> str:
        """The ``webhook-signature`` header value of one attempt (``v1a,<base64>``)."""
        return sign_webhook(self._key, event_id, timestamp, body)


def load_webhook_key(
    data_dir: Path | None, environ: Mapping[str, str] | None = None
) -> WebhookSigningKey:
    """The key from ``$SESSIONWARD_WEBHOOK_KEY``, else from ``<data_dir>/webhook.key`` (made,
    0600, if absent; refused if it is not a regular file or group/others can access it)."""
    env = os.environ if environ is None else environ
    value = env.get(WEBHOOK_KEY_ENV)
    if value:
        return WebhookSigningKey.from_text(value)
    if data_dir is None:
        raise WebhookKeyError(f"no webhook key: set {WEBHOOK_KEY_ENV} or give a data_dir")
    path = Path(data_dir) / WEBHOOK_KEY_FILE
    text = read_private_key_file(path, error=WebhookKeyError, make=_new_key_text)
    return WebhookSigningKey.from_text(text, source=str(path))


def _new_key_text() -> str:
    # The file is the key's only home: write it, never log it.
    raw = Ed25519PrivateKey.generate().private_bytes_raw()
    return base64.b64encode(raw).decode("ascii")


# --- the wire format ------------------------------------------------------------------------


def alert_json(alert: AlertRecord) -> dict[str, Any]:
    """The alert as the webhook (and the API) shows it, camelCase."""
    return {
        "id": alert.id,
        "at": alert.at,
        "rule": alert.rule,
        "severity": alert.severity,
        "sessionId": alert.session_id,
        "walletId": alert.wallet_id,
        "credentialId": alert.credential_id,
        "detail": dict(alert.detail),
        "actionTaken": alert.action_taken,
        "actionAt": alert.action_at,
    }


def event_body(event_id: str, alert: AlertRecord) -> bytes:
    """The body of an alert event (compact JSON; fixed once, reused by every attempt)."""
    document = {"eventId": event_id, "type": "alert", "alert": alert_json(alert)}
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")


def signed_headers(
    key: WebhookSigningKey, event_id: str, body: bytes, now: float
) -> dict[str, str]:
    """The headers of one attempt at ``now`` (unix seconds)."""
    timestamp = str(int(now))
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: key.sign_webhook(event_id, timestamp, body),
    }


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """How deliveries are retried and queued."""

    max_attempts: int = 6
    timeout_s: float = 5.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    queue_size: int = 1000
    workers: int = 2

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.queue_size < 1 or self.workers < 1:
            raise ConfigError("webhook max_attempts, queue_size and workers must be at least 1")
        if self.timeout_s <= 0 or self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ConfigError("webhook timeout must be positive and backoff non-negative")


class WebhookSettings(Protocol):
    """What :meth:`WebhookDispatcher.from_settings` reads (``Settings`` provides it)."""

    @property
    def data_dir(self) -> Path: ...
    @property
    def webhook_urls(self) -> tuple[str, ...]: ...
    @property
    def webhook_max_attempts(self) -> int: ...
    @property
    def webhook_timeout_s(self) -> float: ...
    @property
    def webhook_backoff_s(self) -> float: ...
    @property
    def webhook_backoff_max_s(self) -> float: ...
    @property
    def webhook_queue_size(self) -> int: ...


def check_webhook_url(url: str) -> str:
    """An absolute http(s) URL with a host (anything else is a configuration error)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("a webhook URL must be an absolute http:// or https:// URL")
    return url


def redacted(url: str) -> str:
    """``scheme://host[:port]`` only: webhook paths and queries often carry secrets."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


# --- delivery records -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST: when (the signed timestamp), what came back, and what it meant."""

    number: int
    timestamp: int
    status_code: int | None
    error: str | None
    outcome: AttemptOutcome


@dataclass(slots=True)
class Delivery:
    """One event to one URL. ``body`` and ``event_id`` never change across attempts."""

    event_id: str
    alert_id: str
    url: str
    body: bytes
    state: DeliveryState = "pending"
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WebhookStats:
    """Counters since start. ``pending`` counts deliveries queued or in flight."""

    events: int
    queued: int
    delivered: int
    failed: int
    dropped: int
    attempts: int
    retries: int
    pending: int


# --- the dispatcher -------------------------------------------------------------------------


class WebhookDispatcher:
    """The :data:`~sessionward.service.anomaly.AlertSink` that delivers alerts as signed
    webhooks. ``dispatcher(alert)`` only queues (it never does I/O); ``policy.workers`` daemon
    threads, started with the dispatcher when it has URLs, do the POSTs. :meth:`close` stops
    them (deliveries still queued are abandoned and logged); :meth:`flush` waits for the queue
    to drain. Deliveries are kept in memory only: counters (:meth:`stats`) and the most recent
    ``history`` finished deliveries with every attempt (:meth:`deliveries`).

    ``clock`` gives the unix time the signed timestamps carry; ``rng`` the backoff jitter.
    """

    def __init__(
        self,
        urls: Sequence[str],
        key: WebhookSigningKey,
        *,
        policy: WebhookPolicy | None = None,
        clock: Callable[[], float] = time.time,
        client: httpx.Client | None = None,
        rng: random.Random | None = None,
        history: int = 1000,
    ) -> None:
        self._urls = tuple(check_webhook_url(u) for u in urls)
        self._key = key
        self._policy = policy or WebhookPolicy()
        self._clock = clock
        self._owns_client = client is None
        self._client = client or httpx.Client(
            timeout=self._policy.timeout_s,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Delivery]] = []
        self._sequence = itertools.count()
        self._in_flight = 0
        self._closing = False
        self._workers: list[threading.Thread] = []
        self._finished: deque[Delivery] = deque(maxlen=history)
        self._counts: Counter[str] = Counter()
        # httpx logs every request's full URL at INFO; webhook URLs often carry a token.
        self._log_filter = _RedactUrls(self._urls)
        logging.getLogger("httpx").addFilter(self._log_filter)
        if self._urls:  # started now, so that no alert ever pays for starting a thread
            with self._cond:
                self._start_workers()

    @classmethod
    def from_settings(
        cls,
        settings: WebhookSettings,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> WebhookDispatcher:
        """The dispatcher for ``settings``' URLs and policy, with the key of
        :func:`load_webhook_key` (made on first run even when no URL is configured, so that
        receivers can be set up before webhooks are turned on)."""
        policy = WebhookPolicy(
            max_attempts=settings.webhook_max_attempts,
            timeout_s=settings.webhook_timeout_s,
            backoff_base_s=settings.webhook_backoff_s,
            backoff_max_s=settings.webhook_backoff_max_s,
            queue_size=settings.webhook_queue_size,
        )
        key = load_webhook_key(settings.data_dir, environ)
        return cls(settings.webhook_urls, key, policy=policy, clock=clock)

    def __enter__(self) -> WebhookDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def urls(self) -> tuple[str, ...]:
        return self._urls

    @property
    def public_key_b64(self) -> str:
        """The base64 Ed25519 public key receivers verify with."""
        return self._key.public_key_b64

    # --- the sink ----------------------------------------------------------------------------

    def __call__(self, alert: AlertRecord) -> None:
        self.publish(alert)

    def publish(self, alert: AlertRecord) -> str | None:
        """Queue the alert for every URL; its event id, or None if nothing was queued (no URL,
        closed, or the queue is full — counted as ``dropped``)."""
        if not self._urls:
            return None
        event_id = new_id("evt")
        try:
            body = event_body(event_id, alert)
        except (TypeError, ValueError):  # the store accepted it, so this is a bug: do not raise
            _log.exception("alert %s cannot be encoded as a webhook", alert.id)
            return None
        with self._cond:
            self._counts["events"] += 1
            outstanding = len(self._heap) + self._in_flight
            if self._closing or outstanding + len(self._urls) > self._policy.queue_size:
                self._counts["dropped"] += len(self._urls)
                _log.warning(
                    "webhook queue full or closed: alert %s not delivered (%d pending)",
                    alert.id,
                    outstanding,
                )
                return None
            now = time.monotonic()
            for url in self._urls:
                delivery = Delivery(event_id, alert.id, url, body)
                heapq.heappush(self._heap, (now, next(self._sequence), delivery))
                self._counts["queued"] += 1
            self._cond.notify_all()
        return event_id

    # --- lifecycle ---------------------------------------------------------------------------

    def _start_workers(self) -> None:
        """Start the workers (called with the lock held)."""
        if self._workers:
            return
        for i in range(self._policy.workers):
            worker = threading.Thread(
                target=self._run, name=f"sessionward-webhooks-{i}", daemon=True
            )
            worker.start()
            self._workers.append(worker)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or in flight (retries included); True if drained."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers (an attempt in flight finishes); queued deliveries are abandoned."""
        with self._cond:
            self._closing = True
            abandoned = len(self._heap)
            self._cond.notify_all()
        for worker in self._workers:
            worker.join(timeout)
        if abandoned:
            _log.warning("webhooks closed with %d deliveries not attempted", abandoned)
        if self._owns_client:
            self._client.close()
        logging.getLogger("httpx").removeFilter(self._log_filter)

    # --- reads -------------------------------------------------------------------------------

    def stats(self) -> WebhookStats:
        with self._cond:
            c = self._counts
            return WebhookStats(
                events=c["events"],
                queued=c["queued"],
                delivered=c["delivered"],
                failed=c["failed"],
                dropped=c["dropped"],
                attempts=c["attempts"],
                retries=c["retries"],
                pending=len(self._heap) + self._in_flight,
            )

    def deliveries(self) -> list[Delivery]:
        """Finished deliveries (the most recent ``history``), oldest first, as copies."""
        with self._cond:
            return [
                Delivery(d.event_id, d.alert_id, d.url, d.body, d.state, list(d.attempts))
                for d in self._finished
            ]

    # --- the workers -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closing:
                        return
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                _, _, delivery = heapq.heappop(self._heap)
                self._in_flight += 1
            try:
                attempt, retry_after = self._attempt(delivery)
            except Exception as exc:  # never let one delivery kill the worker
                _log.exception("webhook attempt for %s failed unexpectedly", delivery.event_id)
                attempt = Attempt(
                    len(delivery.attempts) + 1, int(self._clock()), None, repr(exc), "retry"
                )
                retry_after = None
            with self._cond:
                self._in_flight -= 1
                self._settle(delivery, attempt, retry_after)
                self._cond.notify_all()

    def _attempt(self, delivery: Delivery) -> tuple[Attempt, float | None]:
        """POST once; classify the answer. Never raises for network trouble."""
        number = len(delivery.attempts) + 1
        now = self._clock()
        headers = signed_headers(self._key, delivery.event_id, delivery.body, now)
        timestamp = int(headers[TIMESTAMP_HEADER])
        try:
            response = self._client.post(delivery.url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:  # timeouts, refused connections, protocol errors: retry
            return Attempt(number, timestamp, None, type(exc).__name__, "retry"), None
        code = response.status_code
        if 200 <= code < 300:
            return Attempt(number, timestamp, code, None, "delivered"), None
        if code in _RETRY_STATUSES or code >= 500:
            return Attempt(number, timestamp, code, None, "retry"), _retry_after(response)
        return Attempt(number, timestamp, code, None, "failed"), None

    def _settle(self, delivery: Delivery, attempt: Attempt, retry_after: float | None) -> None:
        """Record the attempt; finish the delivery or schedule its next attempt (lock held).
        The last allowed attempt is recorded as ``failed`` whatever made it fail."""
        if attempt.outcome == "retry" and attempt.number >= self._policy.max_attempts:
            attempt = replace(attempt, outcome="failed")
        delivery.attempts.append(attempt)
        self._counts["attempts"] += 1
        where = redacted(delivery.url)
        if attempt.outcome == "delivered":
            delivery.state = "delivered"
        elif attempt.outcome == "retry":
            delay = self._backoff(attempt.number)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self._policy.backoff_max_s))
            self._counts["retries"] += 1
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._sequence), delivery))
            _log.info(
                "webhook %s to %s: attempt %d got %s; retrying in %.2f s",
                delivery.event_id,
                where,
                attempt.number,
                attempt.status_code or attempt.error,
                delay,
            )
            return
        else:
            delivery.state = "failed"
            _log.warning(
                "webhook %s to %s failed after %d attempt(s): %s",
                delivery.event_id,
                where,
                attempt.number,
                attempt.status_code or attempt.error,
            )
        self._counts[delivery.state] += 1
        self._finished.append(delivery)

    def _backoff(self, failures: int) -> float:
        """Exponential backoff with jitter: the capped delay scaled into [50 %, 100 %]."""
        growth = float(2 ** (failures - 1))
        ceiling = min(self._policy.backoff_max_s, self._policy.backoff_base_s * growth)
        return ceiling * (0.5 + 0.5 * self._rng.random())


class _RedactUrls(logging.Filter):
    """Shows only ``scheme://host[:port]`` of the given URLs in a record's arguments."""

    def __init__(self, urls: Sequence[str]) -> None:
        super().__init__()
        self._urls = frozenset(str(httpx.URL(u)) for u in urls) | frozenset(urls)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._urls and isinstance(record.args, tuple):
            record.args = tuple(
                redacted(str(a)) if str(a) in self._urls else a for a in record.args
            )
        return True


def _retry_after(response: httpx.Response) -> float | None:
    """A ``Retry-After`` in seconds (the HTTP-date form is ignored)."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None
