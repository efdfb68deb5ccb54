"""The browser half of the request-signature protocol (signing.js under Chromium, checked by the
server's own verifier), and how the ``/ui`` paths are served."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page
from ui_browser_support import P256_ORDER, Service, high_s_twin, private_jwk

from sessionward.crypto.p256 import generate_private_key, public_key_bytes, sign_p256
from sessionward.crypto.request_signature import (
    CredentialKey,
    InMemoryReplayStore,
    parse_signature_header,
    request_preimage,
    verify_request,
)
from sessionward.ui.routes import CONTENT_SECURITY_POLICY

SIGNATURES = 32


def _module(page: Page, service: Service) -> None:
    """A same-origin page (WebCrypto needs a secure context; 127.0.0.1 is one)."""
    page.goto(service.url + "/ui")


def _evaluate(page: Page, script: str, arg: Any = None) -> Any:
    return page.evaluate(
        f"async (arg) => {{ const m = await import('/ui/static/signing.js'); {script} }}", arg
    )


def test_browser_signatures_verify_with_the_servers_verifier_and_have_low_s(
    service: Service, page: Page
) -> None:
    _module(page, service)
    key = generate_private_key()
    bodies = [f'{{"n":{i},"text":"é ü {i}"}}' for i in range(SIGNATURES)]
    signed = _evaluate(
        page,
        """
        const key = await m.importSigningKey(arg.jwk);
        const signer = new m.RequestSigner(key, "cred_ui.test");
        const out = [];
        let highBefore = 0;
        for (const body of arg.bodies) {
          const bytes = new TextEncoder().encode(body);
          const raw = new Uint8Array(await crypto.subtle.sign(
            { name: "ECDSA", hash: "SHA-256" }, key, bytes));
          if (m.toHex(m.lowS(raw)) !== m.toHex(raw)) highBefore++;
          out.push(await signer.header("POST", "/v1/Waas/ListAccess?x=1", bytes));
        }
        return { headers: out, highBefore };
        """,
        {"jwk": private_jwk(key), "bodies": bodies},
    )

    # WebCrypto picks s at random: about half of raw signatures have a high s.
    assert signed["highBefore"] > 0
    replay = InMemoryReplayStore()
    key_of = CredentialKey.p256(public_key_bytes(key))
    nonces = []
    for header, body in zip(signed["headers"], bodies, strict=True):
        parsed = parse_signature_header(header)
        assert int.from_bytes(parsed.sig[32:], "big") <= P256_ORDER // 2
        nonces.append(parsed.nonce)
        verify_request(
            header,
            method="POST",
            path_with_query="/v1/Waas/ListAccess?x=1",
            body=body.encode(),
            now_ms=time.time_ns() // 1_000_000,
            lookup=lambda _cred: key_of,
            replay=replay,
        )
    assert nonces == sorted(set(nonces)), "nonces strictly increase"
    assert abs(nonces[0] // 1_000_000 - time.time() * 1000) < 60_000


def test_low_s_maps_a_high_s_signature_to_its_low_twin(service: Service, page: Page) -> None:
    _module(page, service)
    key = generate_private_key()
    low = sign_p256(key, b"SessionWard")
    high = high_s_twin(low)
    assert high != low

    mapped = _evaluate(
        page,
        "return [m.toHex(m.lowS(Uint8Array.from(arg.high))), m.toHex(m.lowS(Uint8Array.from(arg.low)))];",
        {"high": list(high), "low": list(low)},
    )

    assert mapped == [low.hex(), low.hex()]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/v1/Waas/RevokeAccess", b'{"a":1}'), ("GET", "/ui/api/ops/overview", b"")],
)
def test_the_browser_preimage_is_the_protocols_byte_for_byte(
    service: Service, page: Page, method: str, path: str, body: bytes
) -> None:
    _module(page, service)
    nonce, ts = 2**62 + 7, 1_795_000_000_123

    text = _evaluate(
        page,
        "const h = await m.sha256Hex(new TextEncoder().encode(arg.body));"
        "return m.preimage(arg.method, arg.path, 'ops-console', BigInt(arg.nonce), arg.ts, h);",
        {
            "method": method.lower(),
            "path": path,
            "body": body.decode(),
            "nonce": str(nonce),
            "ts": ts,
        },
    )

    assert text.encode() == request_preimage(method, path, "ops-console", nonce, ts, body)
    assert text.splitlines()[-1] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ui", "text/html"),
        ("/ui/ops", "text/html"),
        ("/ui/static/signing.js", "text/javascript"),
        ("/ui/static/ui.css", "text/css"),
    ],
)
def test_pages_are_served_with_a_strict_content_security_policy(
    service: Service, path: str, content_type: str
) -> None:
    answer = httpx.get(service.url + path)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(content_type)
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert (
        "script-src 'self';" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    )
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    "raw_path",
    [
        "/ui/static/",
        "/ui/static/nothing.js",
        "/ui/static/..%2Froutes.py",
        "/ui/static/../routes.py",
        "/ui/static/%2e%2e/routes.py",
        "/ui/api/ops",
        "/ui/owner.html",
    ],
)
def test_nothing_but_the_listed_files_is_served(service: Service, raw_path: str) -> None:
    with httpx.Client() as client:
        request = client.build_request("GET", service.url + "/")
        request.url = request.url.copy_with(raw_path=raw_path.encode())
        answer = client.send(request)

    assert answer.status_code == 404
    assert answer.json()["code"] == "METHOD_UNKNOWN"
    assert b"import" not in answer.content


def test_pages_answer_only_get(service: Service) -> None:
    answer = httpx.post(service.url + "/ui", content=b"x")

    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET"
