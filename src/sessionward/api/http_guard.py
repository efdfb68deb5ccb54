"""Limits on the HTTP/1.1 wire itself, enforced while uvicorn's httptools parser reads a request
(before the ASGI app sees it), and the raw request target handed to the app.

uvicorn bounds none of these with httptools: a 1 MiB header, 10,000 headers or a request that
never finishes its headers were all accepted (issue 14). :class:`GuardedHttpToolsProtocol`
adds, per connection:

- the request head (request line and headers, counted on the wire up to the blank line) at
  most ``max_head_bytes`` → 431 ``REQUEST_HEADERS_TOO_LARGE``; at most ``max_headers`` header
  lines → 431 as well; the request target at most ``max_target_bytes`` → 414
  ``REQUEST_LINE_TOO_LONG``. Counted as the bytes arrive, so a refused head is never buffered
  whole;
- a deadline for the head (``head_timeout_s`` from the connection's first moment, then from each
  request's first byte) and one for the body (``body_timeout_s`` from the end of the head): a
  request half sent is answered 408 ``REQUEST_TIMEOUT`` and its connection closed, and the app
  sees a disconnect (it never runs on a partial body). Idle keep-alive connections are closed
  after ``keep_alive_s`` (uvicorn's own timer).

Each refusal is the API's one error shape, with ``connection: close``; so is a request the
parser cannot read at all (400 ``INPUT_MALFORMED``, where uvicorn would answer plain text).

The request target exactly as received (``GET /a?`` keeps its ``?``, which ASGI's ``raw_path``
and ``query_string`` cannot express) is put in the scope under
``scope["extensions"][RAW_TARGET]``; the app builds the signature preimage from it
(docs/protocol.md section 3).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from sessionward.reasons import ReasonCode

from .errors import ApiError

RAW_TARGET: Final = "sessionward.raw_target"
"""The scope extension holding the request target's bytes exactly as received."""

_log = logging.getLogger("sessionward.api")
_HEAD_END: Final = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Wire limits of one server (README, configuration table). Defaults fit every request
    the protocol produces with a wide margin: a signed request's head is under 1 KiB."""

    max_head_bytes: int = 16 * 1024
    max_headers: int = 64
    max_target_bytes: int = 4 * 1024
    head_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: int = 5

    def __post_init__(self) -> None:
        numbers = (self.max_head_bytes, self.max_headers, self.max_target_bytes)
        if min(numbers) <= 0 or min(self.head_timeout_s, self.body_timeout_s) <= 0:
            raise ValueError("HTTP limits and timeouts must be positive")
        if self.keep_alive_s <= 0:
            raise ValueError("the keep-alive timeout must be positive")


def _refusal(status: int, code: ReasonCode, msg: str, reason: str) -> bytes:
    """A whole HTTP/1.1 response in the API's error shape, closing the connection."""
    kind = {
        400: "InvalidRequest",
        408: "RequestTimeout",
        414: "RequestTooLarge",
        431: "RequestTooLarge",
    }[status]
    request_id = "req_" + secrets.token_hex(12)
    body = orjson.dumps(ApiError(status, kind, code, msg, reason=reason).body(request_id))
    head = (
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"x-request-id: " + request_id.encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return STATUS_LINE[status] + head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`HttpLimits` (use :func:`guarded_protocol`)."""

    limits: ClassVar[HttpLimits] = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""  # the last bytes of the head so far, to find a split blank line
        self._header_count = 0
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._due: float | None = None  # the loop time the current deadline falls at
        self._what = "headers"

    # --- deadlines ------------------------------------------------------------------------

    # One timer per connection at most, re-armed lazily: a deadline is a time and a label, and
    # moving it (every request moves it two or three times) costs no timer of its own. The timer
    # only fires to look at the deadline, and sleeps again if it was moved later.

    def _arm(self, seconds: float, what: str) -> None:
        self._due = self.loop.time() + seconds
        self._what = what
        if self._deadline is None:
            self._deadline = self.loop.call_at(self._due, self._check)

    def _disarm(self) -> None:
        self._due = None

    def _cancel_timer(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _check(self) -> None:
        self._deadline = None
        if self._due is None:
            return
        if self.loop.time() < self._due:
            self._deadline = self.loop.call_at(self._due, self._check)
            return
        self._due = None
        self._expired(self._what)

    def _expired(self, what: str) -> None:
        cycle = self.cycle
        if what == "body" and cycle is not None:
            # The app waits for the rest of the body: it gets a disconnect, not a short body,
            # and whatever it answers afterwards is dropped.
            answered = cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
            if answered:
                self.transport.close()
                return
        self._refuse(
            408, ReasonCode.REQUEST_TIMEOUT, f"the request's {what} did not arrive in time", what
        )

    # --- refusals -------------------------------------------------------------------------

    def _refuse(self, status: int, code: ReasonCode, msg: str, reason: str) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._disarm()
        _log.warning("refused on the wire: %s (%s)", code.value, reason)
        self.transport.write(_refusal(status, code, msg, reason))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """httptools could not parse the request (a header name with a space, a bad request
        line...): the API's error shape, 400 ``INPUT_MALFORMED``, instead of uvicorn's text."""
        self._refuse(400, ReasonCode.INPUT_MALFORMED, "the request is not valid HTTP/1.1", "http")

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.head_timeout_s, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            window = self._tail + data
            end = window.find(_HEAD_END)
            if end < 0:
                self._head_bytes += len(data)
                self._tail = window[-3:]
            else:
                self._head_bytes += max(0, end + len(_HEAD_END) - len(self._tail))
                self._tail = b""
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(
                    431,
                    ReasonCode.REQUEST_HEADERS_TOO_LARGE,
                    f"the request head is larger than {self.limits.max_head_bytes} bytes",
                    "request head",
                )
                return
        super().data_received(data)

    # --- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._header_count = 0
        self._arm(self.limits.head_timeout_s, "headers")

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_target_bytes:
            self._refuse(
                414,
                ReasonCode.REQUEST_LINE_TOO_LONG,
                f"the request target is longer than {self.limits.max_target_bytes} bytes",
                "request target",
            )
            raise _Refused  # stops the parser; the answer is written

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refuse(
                431,
                ReasonCode.REQUEST_HEADERS_TOO_LARGE,
                f"more than {self.limits.max_headers} request headers",
                "header count",
            )
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._tail = b""
        # ASGI types extensions as dict[str, dict]; the target is bytes, read back by the app.
        self.scope["extensions"] = {RAW_TARGET: bytes(self.url)}  # type: ignore[dict-item]
        self._arm(self.limits.body_timeout_s, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


class _Refused(Exception):
    """Raised from a parser callback after the refusal is written, to stop parsing."""


def guarded_protocol(limits: HttpLimits) -> type[GuardedHttpToolsProtocol]:
    """A :class:`GuardedHttpToolsProtocol` class bound to ``limits`` (uvicorn builds one
    protocol per connection from the class it is given as ``http``)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
