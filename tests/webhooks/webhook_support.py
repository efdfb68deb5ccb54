"""A real webhook receiver for the webhook tests: an ``http.server`` on a free 127.0.0.1 port in
a daemon thread. It records every delivery attempt (headers, raw body), verifies it with the
SDK's :func:`~sessionward.sdk.webhooks.verify_webhook`, and answers from a script of statuses
(then 200), optionally after a delay."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from sessionward.crypto.webhook_signature import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from sessionward.sdk.webhooks import WebhookVerificationError, verify_webhook
from sessionward.service.webhooks import WebhookPolicy
from sessionward.store.alerts import AlertRecord

FAST = WebhookPolicy(max_attempts=6, timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05)
"""Retries within tens of milliseconds, so that retry tests take no time."""


@dataclass(frozen=True)
class Received:
    """One attempt as the receiver saw it, and what the SDK verifier said about it."""

    headers: dict[str, str]
    body: bytes
    event: dict[str, Any] | None
    refusal: str | None
    status: int
    arrived: float
    """``time.monotonic()`` when the request arrived."""

    @property
    def event_id(self) -> str:
        return self.headers[EVENT_ID_HEADER]

    @property
    def timestamp(self) -> str:
        return self.headers[TIMESTAMP_HEADER]

    @property
    def signature(self) -> str:
        return self.headers[SIGNATURE_HEADER]


@dataclass
class Receiver:
    """Answers ``statuses`` in order (then ``default``), each after the next of ``delays``
    (then ``delay_s``) seconds."""

    public_key_b64: str
    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay_s: float = 0.0
    delays: list[float] = field(default_factory=list)
    retry_after: str | None = None
    """A ``Retry-After`` value sent with every answer that is not 2xx."""
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)
    _server: ThreadingHTTPServer = field(init=False)
    _thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver._handle(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/alerts"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        arrived = time.monotonic()
        headers = dict(handler.headers.items())
        event: dict[str, Any] | None = None
        refusal: str | None = None
        try:
            event = verify_webhook(self.public_key_b64, headers, body)
        except WebhookVerificationError as refused:
            refusal = refused.code
        with self._lock:
            status = self.statuses.pop(0) if self.statuses else self.default
            delay = self.delays.pop(0) if self.delays else self.delay_s
        with self._arrived:  # recorded on arrival, before the answer is delayed
            self.received.append(Received(headers, body, event, refusal, status, arrived))
            self._arrived.notify_all()
        if delay:
            time.sleep(delay)
        handler.send_response(status)
        if self.retry_after is not None and not 200 <= status < 300:
            handler.send_header("Retry-After", self.retry_after)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``count`` attempts arrived; the attempts so far."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"only {len(self.received)} of {count} attempts arrived"
                self._arrived.wait(remaining)
            return list(self.received)


def an_alert(alert_id: str = "alr_test1", **changes: Any) -> AlertRecord:
    """A critical anomaly alert as the policy path records it."""
    fields: dict[str, Any] = {
        "id": alert_id,
        "at": 1_700_000_000,
        "rule": "forbidden_action_attempt",
        "severity": "critical",
        "detail": {"decision": "dec_1", "reasons": ["NON_DELEGABLE_ACTION"], "why": ["x"]},
        "session_id": "ses_1",
        "wallet_id": "wal_1",
        "credential_id": "cred_1",
        "action_taken": "revoked session ses_1",
        "action_at": 1_700_000_001,
    }
    fields.update(changes)
    return AlertRecord(**fields)


class TickingClock:
    """Wall time plus ``step`` more seconds at every reading, so that consecutive attempts carry
    distinct signed timestamps (still within any sane tolerance of the real clock)."""

    def __init__(self, step: int = 7) -> None:
        self._step = step
        self._ticks = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self._ticks += 1
            return time.time() + self._ticks * self._step
