"""The SDK's transport pieces: nonces, bodies, errors (no server needed)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from sessionward.crypto.request_signature import (
    CredentialKey,
    InMemoryReplayStore,
    Secp256k1RequestSigner,
    verify_request,
)
from sessionward.sdk import BackendClient, NonceCounter, SessionWardApiError
from sessionward.sdk.transport import amount, encode_body, hex_bytes, json_args


def test_nonces_strictly_increase_across_threads_and_start_at_the_clock() -> None:
    before = time.time_ns()
    counter = NonceCounter()
    seen: list[int] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [counter.next() for _ in range(500)]
        assert mine == sorted(mine) and len(set(mine)) == len(mine)
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 2000
    assert min(seen) > before


def test_floats_are_refused_before_sending() -> None:
    with pytest.raises(TypeError, match="float"):
        encode_body({"value": 1.5})
    with pytest.raises(TypeError):
        encode_body({"args": [[0.1]]})
    assert encode_body({"value": "1", "n": 2}) == b'{"value":"1","n":2}'


def test_wire_conversions() -> None:
    assert amount(10**30) == str(10**30)
    with pytest.raises(ValueError):
        amount("-1")
    with pytest.raises(TypeError):
        amount(True)
    assert hex_bytes(b"\x01\xab") == "0x01ab"
    assert json_args([1, True, b"\x00", ("a", 2)]) == ["1", True, "0x00", ["a", "2"]]


def test_every_request_is_signed_over_its_exact_bytes_and_path() -> None:
    signer = Secp256k1RequestSigner(bytes(31) + b"\x07")
    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200, json={"items": [], "nextCursor": None})

    client = BackendClient(
        "http://api.example/prefix/",
        signer,
        "cred_1",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert client.list_sessions(limit=3) == {"items": [], "nextCursor": None}
    (request,) = captured
    assert request.url.raw_path == b"/prefix/v1/Waas/ListSessions"
    verify_request(
        request.headers["Oms-Wallet-Signature"],
        method="POST",
        path_with_query=request.url.raw_path.decode(),
        body=request.content,
        now_ms=time.time_ns() // 1_000_000,
        lookup=lambda _cred: CredentialKey.secp256k1(signer.address),
        replay=InMemoryReplayStore(),
    )


def test_an_error_answer_becomes_an_api_error_even_without_the_api_shape() -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>bad gateway</html>")

    client = BackendClient(
        "http://api.example",
        Secp256k1RequestSigner(bytes(31) + b"\x07"),
        "cred_1",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(SessionWardApiError) as raised:
        client.get_session("ses_1")
    assert (raised.value.status, raised.value.code) == (502, "HTTP_ERROR")


def test_reads_are_retried_after_a_transport_failure_but_plain_mutations_are_not() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("boom", request=request)
        return httpx.Response(200, json={"ok": True})

    client = BackendClient(
        "http://api.example",
        Secp256k1RequestSigner(bytes(31) + b"\x07"),
        "cred_1",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert client.get_session("ses_1") == {"ok": True}
    assert len(calls) == 2
    calls.clear()
    with pytest.raises(httpx.ConnectError):
        client.prepare_transaction("wal_1", "ses_1", "0x" + "11" * 20, 0, b"\x00" * 4)
    assert len(calls) == 1


def _rate_limited(code: str = "RATE_LIMITED_REQUESTS", retry_after: str = "0") -> httpx.Response:
    return httpx.Response(
        429,
        headers={"Retry-After": retry_after},
        json={"code": code, "error": "TooManyRequests", "msg": "slow down", "reason": "x"},
    )


def _client(answers: list[httpx.Response], captured: list[httpx.Request]) -> BackendClient:
    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return answers.pop(0)

    return BackendClient(
        "http://api.example",
        Secp256k1RequestSigner(bytes(31) + b"\x07"),
        "cred_1",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def test_a_request_refused_for_its_rate_is_sent_again_re_signed_after_retry_after() -> None:
    captured: list[httpx.Request] = []
    ok = httpx.Response(200, json={"items": [], "nextCursor": None})
    client = _client([_rate_limited(), ok], captured)

    assert client.list_sessions() == {"items": [], "nextCursor": None}

    first, second = (r.headers["Oms-Wallet-Signature"] for r in captured)
    assert first != second  # a fresh nonce: the refused one was never recorded, but no reuse


def test_a_rate_refusal_is_raised_when_its_wait_is_too_long_or_retries_run_out() -> None:
    captured: list[httpx.Request] = []
    client = _client([_rate_limited(retry_after="3600")], captured)
    with pytest.raises(SessionWardApiError) as long_wait:
        client.list_sessions()
    assert (long_wait.value.status, long_wait.value.code) == (429, "RATE_LIMITED_REQUESTS")
    assert len(captured) == 1

    captured.clear()
    client = _client([_rate_limited() for _ in range(3)], captured)
    with pytest.raises(SessionWardApiError):
        client.list_sessions()
    assert len(captured) == 3  # the first try and two retries


def test_other_429_answers_are_not_retried() -> None:
    captured: list[httpx.Request] = []
    client = _client([_rate_limited(code="WALLET_CREATION_BUDGET_EXHAUSTED")], captured)
    with pytest.raises(SessionWardApiError) as budget:
        client.list_sessions()
    assert budget.value.code == "WALLET_CREATION_BUDGET_EXHAUSTED"
    assert len(captured) == 1
