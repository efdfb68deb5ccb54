"""Property test of the whole API against its own OpenAPI document (schemathesis).

Every operation gets schema-conforming (positive) and schema-violating (negative) requests,
derandomized, so the run is the same each time (1,072 cases). A test-only ASGI wrapper signs
each generated request that carries the signature header as the right actor for its method,
so that cases get past authentication into the service, and swaps generated *valid* values
for other valid values that reach further: real ids (a live wallet, session, credential or
quote) three times out of four, lower-case addresses, a callable method signature, the
signing key for self-signed methods, and an Idempotency-Key distinct per request.

Checked on every case: never a 5xx; the status is documented; the body conforms to the
documented response schema (the error shape included); negative data is refused with a 4xx.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import pytest
import schemathesis
from api_support import MERCHANT, TRANSFER, Actor, Api, new_world, quote
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from sessionward.api import SessionWardApi
from sessionward.api.methods import METHODS
from sessionward.service.waas import Waas

OWNER_METHODS = {
    "AuthorizeRemoteAccess",
    "ImportPermissionRequest",
    "ApproveSession",
    "ListAccess",
    "RevokeAccess",
    "CreatePairingCode",
    "ListDevices",
    "RevokeDevice",
}
OPS_METHODS = {"EmergencyRevoke", "LiftFreeze"}
ID_FIELDS = {"walletId", "sessionId", "credentialId", "txnId"}
ID_PATTERN = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
ADDRESS_FIELDS = {"to", "contract", "account", "owner"}
ADDRESS_PATTERN = re.compile(r"0x[0-9a-fA-F]{40}")
KEY_PATTERN = re.compile(r"(?:0x)?[0-9a-fA-F]{40,130}")
PRINTABLE_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,1024}")
IDEMPOTENCY_PATTERN = re.compile(r"[!-~]{1,128}")
SELF_METHODS = {"CreateWallet", "RegisterWallet", "RegisterCredential", "GetRegistrationChallenge"}
ALGS = {"ecdsa-p256k-eip191", "ecdsa-p256-sha256"}
SIGNATURE = b"oms-wallet-signature"
EXAMPLES = {GenerationMode.POSITIVE: 32, GenerationMode.NEGATIVE: 24}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class SigningApp:
    """Test-only ASGI wrapper: swaps in real ids and signs as the method's actor."""

    def __init__(
        self, app: SessionWardApi, actors: dict[str, Actor], ids: dict[str, list[str]]
    ) -> None:
        self._app = app
        self._actors = actors
        self._ids = ids

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/Waas/"):
            await self._app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method = scope["path"].removeprefix("/v1/Waas/")
        body = self._realistic(method, body)
        # Sign only requests that carry the header: a negative case may omit it on purpose.
        signed = any(k.lower() == SIGNATURE for k, _ in scope["headers"])
        actor = self._actor(method) if signed else None
        headers = []
        for name, value in scope["headers"]:
            if name.lower() in (SIGNATURE, b"content-length"):
                continue
            if name.lower() == b"idempotency-key":
                value = _distinct_key(value, method, body)
            headers.append((name, value))
        headers.append((b"content-length", str(len(body)).encode()))
        if actor is not None:
            headers.append((SIGNATURE, actor.header(method, body).encode()))
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app({**scope, "headers": headers}, replay, send)

    def _actor(self, method: str) -> Actor | None:
        if method == "InspectCredential":
            return None
        if method in OWNER_METHODS:
            return self._actors["owner"]
        if method in OPS_METHODS:
            return self._actors["ops"]
        if method in SELF_METHODS:
            return self._actors["self"]
        return self._actors["backend"]

    def _realistic(self, method: str, body: bytes) -> bytes:
        """Valid values swapped for other valid values that reach further into the service:
        real ids (three times out of four), lower-case addresses (random mixed case is a
        broken EIP-55 checksum), and for self-signed methods the signing key itself."""
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        if not isinstance(doc, dict):
            return body
        original = dict(doc)
        for field in ID_FIELDS & set(doc):
            value, pool = doc[field], self._ids[field]
            digest = hashlib.sha256(repr(value).encode()).digest()
            valid = isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None
            if valid and pool and digest[0] % 4 != 0:
                doc[field] = pool[digest[1] % len(pool)]
        if (
            method == "PrepareEthereumContractCall"
            and _valid_call(doc)
            and hashlib.sha256(body).digest()[0] % 2 == 0
        ):
            doc["method"], doc["args"] = TRANSFER, [MERCHANT, "1"]
            doc["contract"] = self._ids["token"][0]
        for field in ADDRESS_FIELDS & set(doc):
            value = doc[field]
            if isinstance(value, str) and ADDRESS_PATTERN.fullmatch(value):
                doc[field] = value.lower()
        key = self._actors["self"]
        public_key = doc.get("publicKey")
        if (
            method in SELF_METHODS
            and doc.get("alg") in ALGS
            and isinstance(public_key, str)
            and KEY_PATTERN.fullmatch(public_key)
        ):
            doc["alg"], doc["publicKey"] = key.signer.alg, key.public_key
        return json.dumps(doc).encode() if doc != original else body


def _valid_call(doc: dict[str, Any]) -> bool:
    """A contract call whose method, args and contract are all schema-valid."""
    signature, contract = doc.get("method"), doc.get("contract")
    return (
        isinstance(signature, str)
        and PRINTABLE_PATTERN.fullmatch(signature) is not None
        and isinstance(doc.get("args"), list)
        and isinstance(contract, str)
        and ADDRESS_PATTERN.fullmatch(contract) is not None
    )


def _distinct_key(value: bytes, method: str, body: bytes) -> bytes:
    """Generated keys collide across different requests (409 by design); a valid key is made
    distinct per request so that retries of the *same* request still share it."""
    text = value.decode("latin-1")
    if IDEMPOTENCY_PATTERN.fullmatch(text) is None:
        return value
    digest = hashlib.sha256(method.encode() + b"\n" + body).hexdigest()[:12]
    return f"{text[:100]}.{digest}".encode()


@pytest.fixture(scope="module")
def schema(app: SessionWardApi, api: Api, waas: Waas, ops: list[Actor]) -> Any:
    this, other = new_world(api, waas), new_world(api, waas)
    # The signing actors' own objects three times out of four, another actor's otherwise.
    mine = [quote(api, waas, this) for _ in range(9)]
    ids = {
        "walletId": [this.wallet_id] * 3 + [other.wallet_id],
        "sessionId": [this.session_id] * 3 + [other.session_id],
        "credentialId": [this.backend.credential_id] * 3 + [other.backend.credential_id],
        "txnId": [*mine, *(quote(api, waas, other) for _ in range(3))],
        "token": [waas.runtime.deployment.token("USDX")],
    }
    actors = {
        "owner": this.owner,
        "backend": this.backend,
        "ops": ops[0],
        "self": Actor.secp256k1(),
    }
    return schemathesis.openapi.from_asgi("/openapi.json", SigningApp(app, actors, ids))


METHOD_PATHS = [f"/v1/Waas/{name}" for name in sorted(METHODS)]
CASES = [
    *((path, mode) for path in METHOD_PATHS for mode in EXAMPLES),
    # The GET endpoints take no parameters: nothing to negate.
    ("/healthz", GenerationMode.POSITIVE),
    ("/metrics", GenerationMode.POSITIVE),
]


@pytest.mark.parametrize(("path", "mode"), CASES, ids=[f"{p}-{m}" for p, m in CASES])
def test_generated_requests_never_yield_a_server_error(
    schema: Any, path: str, mode: GenerationMode
) -> None:
    verb = "GET" if path in ("/healthz", "/metrics") else "POST"
    operation = schema[path][verb]
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
    count = 0

    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        nonlocal count
        count += 1
        response = case.call()
        assert response.status_code < 500, response.text
        case.validate_response(response, checks=checks)

    started = time.monotonic()
    run()
    assert count == (EXAMPLES[mode] if verb == "POST" else 1)
    assert time.monotonic() - started < 60


def test_the_run_is_at_least_a_thousand_cases() -> None:
    assert sum(EXAMPLES[mode] for path, mode in CASES if path in METHOD_PATHS) >= 1000
