"""Property test of the whole API against its own OpenAPI document (schemathesis).

Every operation gets schema-conforming (positive) and schema-violating (negative) requests,
derandomized, so the run is the same each time. A test-only ASGI wrapper signs each generated
request that carries the signature header as the right actor for its method (so the cases get past authentication into the
service) and, for half of the generated identifiers, substitutes a real one (a live wallet,
session, credential or quote), so that the service's paths are exercised, not only its 404s.

Checked on every case: never a 5xx; the status is documented; the body conforms to the
documented response schema (the error shape included); negative data is refused with a 4xx.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from api_support import Actor, Api, World, new_world, quote
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

OWNER_METHODS = {"AuthorizeRemoteAccess", "ApproveSession", "ListAccess", "RevokeAccess"}
OPS_METHODS = {"EmergencyRevoke", "LiftFreeze"}
ID_FIELDS = {"walletId", "sessionId", "credentialId", "txnId"}
ID_PATTERN = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
EXAMPLES = {GenerationMode.POSITIVE: 32, GenerationMode.NEGATIVE: 24}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

_cases: list[int] = []
STATS: dict = {}


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
        body = self._real_ids(body)
        # Sign only requests that carry the header: a negative case may omit it on purpose.
        signed = any(k.lower() == b"oms-wallet-signature" for k, _ in scope["headers"])
        actor = self._actor(method) if signed else None
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in (b"oms-wallet-signature", b"content-length")
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        if actor is not None:
            headers.append((b"oms-wallet-signature", actor.header(method, body).encode()))
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
        if method in ("CreateWallet", "RegisterWallet"):
            return self._actors["self"]
        return self._actors["backend"]

    def _real_ids(self, body: bytes) -> bytes:
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        if not isinstance(doc, dict):
            return body
        changed = False
        for field in ID_FIELDS & set(doc):
            value = doc[field]
            pool = self._ids[field]
            digest = hashlib.sha256(repr(value).encode()).digest()
            # Only a valid id is swapped for another valid one (a negative case stays negative).
            valid = isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None
            if valid and pool and digest[0] % 2 == 0:
                doc[field] = pool[digest[1] % len(pool)]
                changed = True
        return json.dumps(doc).encode() if changed else body


@pytest.fixture(scope="module")
def schema(app: SessionWardApi, api: Api, waas: Waas, ops: list[Actor]) -> Iterator[Any]:
    worlds: list[World] = [new_world(api, waas) for _ in range(2)]
    quotes = [quote(api, waas, world) for world in worlds for _ in range(6)]
    this = worlds[0]
    ids = {
        "walletId": [w.wallet_id for w in worlds],
        "sessionId": [w.session_id for w in worlds],
        "credentialId": [w.backend.credential_id for w in worlds],
        "txnId": quotes,
    }
    actors = {
        "owner": this.owner,
        "backend": this.backend,
        "ops": ops[0],
        "self": Actor.secp256k1(),
    }
    yield schemathesis.openapi.from_asgi("/openapi.json", SigningApp(app, actors, ids))
    import collections
    for k, v in STATS.items(): print(k, collections.Counter(v).most_common(6))
    assert sum(_cases) >= 1000, f"only {sum(_cases)} generated cases"


OPERATIONS = [f"/v1/Waas/{name}" for name in sorted(METHODS)] + ["/healthz", "/metrics"]


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=str)
@pytest.mark.parametrize("path", OPERATIONS)
def test_generated_requests_never_yield_a_server_error(
    schema: Any, path: str, mode: GenerationMode
) -> None:
    verb = "GET" if path in ("/healthz", "/metrics") else "POST"
    operation = schema[path][verb]
    if mode is GenerationMode.NEGATIVE and verb == "GET":
        pytest.skip("nothing to negate: no parameters")
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
        STATS.setdefault(path + "-" + str(mode), []).append((response.status_code, response.json().get("code") if response.headers.get("content-type","").startswith("application/json") and isinstance(response.json(), dict) else None))
        assert response.status_code < 500, response.text
        case.validate_response(response, checks=checks)

    started = time.monotonic()
    run()
    _cases.append(count)
    assert count > 0
    assert time.monotonic() - started < 60
