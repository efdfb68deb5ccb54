"""The HTTP edge's wire limits and the raw request target (issue 14.1), over real sockets on
loopback against ``sessionward serve``'s server (uvicorn + httptools behind
:mod:`sessionward.api.http_guard`).

Every attack carries a correctly signed Execute of a fresh quote; each is refused with its exact
status and code, and the quote stays ``quoted``. The same request sent plainly afterwards goes
through, so nothing (its nonce included) was spent by the refusal.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from api_support import Api, World, next_nonce, quote, raw_json

from sessionward.api.http_guard import HttpLimits
from sessionward.server import BackgroundServer
from sessionward.service.waas import Waas

SIG = "Oms-Wallet-Signature"
LIMITS = HttpLimits(head_timeout_s=1.0, body_timeout_s=1.0, keep_alive_s=2)


@pytest.fixture(scope="module")
def address(waas: Waas) -> Iterator[tuple[str, int]]:
    server = BackgroundServer(waas, limits=LIMITS)
    with server as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _status(waas: Waas, txn_id: str) -> str:
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None
    return txn.status


def _head(target: str, body: bytes, signature: str, extra: bytes = b"") -> bytes:
    return (
        f"POST {target} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{SIG}: {signature}\r\n".encode()
        + extra
        + b"\r\n"
    )


def _exchange(address: tuple[str, int], *parts: bytes, pause: float = 0.0) -> tuple[int, dict]:
    """Send ``parts`` (pausing between them), read until the server closes or answers; the
    status and the JSON body."""
    with socket.create_connection(address, timeout=10) as sock:
        for part in parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed early: read its answer
            time.sleep(pause)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _expected(data):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def _expected(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":")[1])
    return len(data) + 1


def _signed(world: World, waas: Waas, api: Api, target: str = "/v1/Waas/Execute") -> tuple:
    txn = quote(api, waas, world)
    body = raw_json({"txnId": txn})
    return txn, body, world.backend.header("Execute", body, nonce=next_nonce(), path=target)


def _goes_through(address: tuple[str, int], body: bytes, signature: str) -> None:
    status, doc = _exchange(address, _head("/v1/Waas/Execute", body, signature) + body)
    assert status == 200, doc


def test_a_one_mebibyte_header_is_refused_and_nothing_executes(
    address: tuple[str, int], api: Api, world: World, waas: Waas
) -> None:
    txn, body, signature = _signed(world, waas, api)
    big = b"x-big: " + b"a" * (1 << 20) + b"\r\n"
    status, doc = _exchange(address, _head("/v1/Waas/Execute", body, signature, big) + body)
    assert (status, doc["code"]) == (431, "REQUEST_HEADERS_TOO_LARGE")
    assert _status(waas, txn) == "quoted"
    _goes_through(address, body, signature)
    assert _status(waas, txn) == "pending"


def test_ten_thousand_headers_are_refused_and_nothing_executes(
    address: tuple[str, int], api: Api, world: World, waas: Waas
) -> None:
    txn, body, signature = _signed(world, waas, api)
    many = b"".join(b"x-%d: 1\r\n" % i for i in range(10_000))
    status, doc = _exchange(address, _head("/v1/Waas/Execute", body, signature, many) + body)
    assert (status, doc["code"]) == (431, "REQUEST_HEADERS_TOO_LARGE")
    assert _status(waas, txn) == "quoted"


def test_more_headers_than_the_count_limit_are_refused_even_when_small(
    address: tuple[str, int], api: Api, world: World, waas: Waas
) -> None:
    txn, body, signature = _signed(world, waas, api)
    many = b"".join(b"x%d:1\r\n" % i for i in range(LIMITS.max_headers + 1))
    assert len(many) < LIMITS.max_head_bytes
    status, doc = _exchange(address, _head("/v1/Waas/Execute", body, signature, many) + body)
    assert (status, doc["code"]) == (431, "REQUEST_HEADERS_TOO_LARGE")
    assert doc["reason"] == "header count"
    assert _status(waas, txn) == "quoted"


def test_a_long_request_target_is_refused_with_414(address: tuple[str, int]) -> None:
    target = "/v1/Waas/Execute?" + "a" * (LIMITS.max_target_bytes + 1)
    status, doc = _exchange(address, _head(target, b"{}", "x") + b"{}")
    assert (status, doc["code"]) == (414, "REQUEST_LINE_TOO_LONG")


def test_a_half_sent_head_is_timed_out(address: tuple[str, int]) -> None:
    started = time.monotonic()
    status, doc = _exchange(address, b"POST /v1/Waas/Execute HTTP/1.1\r\nhost: x\r\n")
    assert (status, doc["code"]) == (408, "REQUEST_TIMEOUT")
    assert doc["reason"] == "headers"
    assert LIMITS.head_timeout_s <= time.monotonic() - started < LIMITS.head_timeout_s + 3


def test_a_connection_that_sends_nothing_is_timed_out(address: tuple[str, int]) -> None:
    status, doc = _exchange(address)
    assert (status, doc["code"]) == (408, "REQUEST_TIMEOUT")


def test_a_half_sent_body_is_timed_out_and_nothing_executes(
    address: tuple[str, int], api: Api, world: World, waas: Waas
) -> None:
    txn, body, signature = _signed(world, waas, api)
    status, doc = _exchange(address, _head("/v1/Waas/Execute", body, signature) + body[:-3])
    assert (status, doc["code"]) == (408, "REQUEST_TIMEOUT")
    assert doc["reason"] == "body"
    assert _status(waas, txn) == "quoted"
    _goes_through(address, body, signature)
    assert _status(waas, txn) == "pending"


def test_a_request_signed_without_a_query_is_refused_at_a_bare_question_mark(
    address: tuple[str, int], api: Api, world: World, waas: Waas
) -> None:
    txn, body, signature = _signed(world, waas, api)
    status, doc = _exchange(address, _head("/v1/Waas/Execute?", body, signature) + body)
    assert (status, doc["code"]) == (401, "SIGNER_MISMATCH")
    assert _status(waas, txn) == "quoted"
    _goes_through(address, body, signature)
    assert _status(waas, txn) == "pending"


def test_the_preimage_uses_the_target_exactly_as_received(
    address: tuple[str, int], api: Api, world: World, waas: Waas
) -> None:
    txn, body, signature = _signed(world, waas, api, target="/v1/Waas/Execute?")
    status, doc = _exchange(address, _head("/v1/Waas/Execute?", body, signature) + body)
    assert status == 200, doc
    assert _status(waas, txn) == "pending"


@pytest.mark.parametrize("target", ["http://127.0.0.1/v1/Waas/Execute", "/v1/Waas/Execute#frag"])
def test_a_target_form_the_protocol_never_produces_is_refused(
    address: tuple[str, int], api: Api, world: World, waas: Waas, target: str
) -> None:
    txn, body, signature = _signed(world, waas, api, target="/v1/Waas/Execute")
    status, doc = _exchange(address, _head(target, body, signature) + body)
    assert (status, doc["code"]) == (400, "REQUEST_TARGET_MALFORMED")
    assert _status(waas, txn) == "quoted"


def test_ordinary_keep_alive_requests_still_work(address: tuple[str, int]) -> None:
    request = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
    with socket.create_connection(address, timeout=10) as sock:
        for _ in range(3):
            sock.sendall(request)
            data = b""
            while len(data) < _expected(data) or b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            assert data.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /v1/Waas/Execute HTTP/1.1\r\nbad header: x\r\n\r\n",
        b"POST /v1/Waas/Execute HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxx",
    ],
)
def test_a_request_the_parser_cannot_read_answers_400_in_the_api_shape(
    address: tuple[str, int], request_bytes: bytes
) -> None:
    status, doc = _exchange(address, request_bytes)
    assert (status, doc["code"]) == (400, "INPUT_MALFORMED")
    assert doc["error"] == "InvalidRequest"
