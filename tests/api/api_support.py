"""Helpers for the API tests: signing clients over the in-process app, and fresh actors.

A plain module (not a conftest) so that test modules can import it by name.
"""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from sessionward.crypto.p256 import generate_private_key
from sessionward.crypto.request_signature import (
    P256RequestSigner,
    RequestSigner,
    Secp256k1RequestSigner,
    sign_request,
)
from sessionward.crypto.secp256k1 import sign_digest
from sessionward.service.config import OpsCredential
from sessionward.service.waas import Waas

with warnings.catch_warnings():  # starlette warns that it prefers httpx2; httpx is what we pin
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

__all__ = ["TestClient"]

MERCHANT = "0x3333333333333333333333333333333333333333"
STRANGER = "0x4444444444444444444444444444444444444444"
TRANSFER = "transfer(address,uint256)"

_nonce = time.time_ns()


def next_nonce() -> int:
    global _nonce
    _nonce = max(_nonce + 1, time.time_ns())
    return _nonce


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def path_of(method: str) -> str:
    return f"/v1/Waas/{method}"


def raw_json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Actor:
    """A key and the credential it signs as (``"self"`` until registered)."""

    signer: RequestSigner
    secret: bytes | None = None
    credential_id: str = "self"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def secp256k1(cls) -> Actor:
        secret = secrets.token_bytes(32)
        return cls(Secp256k1RequestSigner(secret), secret)

    @classmethod
    def p256(cls) -> Actor:
        return cls(P256RequestSigner(generate_private_key()))

    @property
    def public_key(self) -> str:
        if isinstance(self.signer, Secp256k1RequestSigner):
            return self.signer.address
        assert isinstance(self.signer, P256RequestSigner)
        return "0x" + self.signer.public_key.hex()

    def header(
        self,
        method: str,
        body: bytes,
        *,
        nonce: int | None = None,
        ts: int | None = None,
        path: str | None = None,
        http_method: str = "POST",
    ) -> str:
        return sign_request(
            self.signer,
            self.credential_id,
            http_method,
            path or path_of(method),
            body,
            next_nonce() if nonce is None else nonce,
            now_ms() if ts is None else ts,
        )


class Api:
    """Posts to the app, signing as an actor (or unsigned)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def post_raw(
        self, method: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        merged = {"content-type": "application/json", **(headers or {})}
        response: httpx.Response = self.client.post(path_of(method), content=body, headers=merged)
        return response

    def call(
        self,
        method: str,
        body: Mapping[str, Any],
        actor: Actor | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **sign: Any,
    ) -> httpx.Response:
        raw = raw_json(body)
        merged = dict(headers or {})
        if actor is not None:
            merged["Oms-Wallet-Signature"] = actor.header(method, raw, **sign)
        return self.post_raw(method, raw, merged)

    def ok(self, method: str, body: Mapping[str, Any], actor: Actor | None = None) -> Any:
        response = self.call(method, body, actor)
        assert response.status_code == 200, response.text
        return response.json()


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert an error answer with exactly this status and code; return its document."""
    assert response.status_code == status, response.text
    doc: dict[str, Any] = response.json()
    assert doc["code"] == code, doc
    assert doc["status"] == status
    assert doc["requestId"] == response.headers["x-request-id"]
    return doc


# --- actors --------------------------------------------------------------------------------


def register_backend(api: Api, actor: Actor | None = None, *, ttl: int = 86_400) -> Actor:
    actor = actor or Actor.secp256k1()
    body = {
        "alg": actor.signer.alg,
        "publicKey": actor.public_key,
        "appName": "Acme Agent",
        "appUrl": "https://acme.example",
        "expiresAt": int(time.time()) + ttl,
    }
    actor.credential_id = "self"
    actor.credential_id = api.ok("RegisterCredential", body, actor)["credentialId"]
    return actor


def create_owner(api: Api) -> Actor:
    """A fresh owner with a new wallet; ``extra`` holds walletId and account."""
    owner = Actor.secp256k1()
    wallet = api.ok("CreateWallet", {"alg": owner.signer.alg, "publicKey": owner.public_key}, owner)
    owner.credential_id = wallet["ownerCredentialId"]
    owner.extra.update(walletId=wallet["walletId"], account=wallet["account"])
    return owner


def transfer_envelope(waas: Waas, *, ttl: int = 1800, **overrides: Any) -> dict[str, Any]:
    usdx = waas.runtime.deployment.token("USDX")
    envelope: dict[str, Any] = {
        "capabilities": ["erc20.transfer"],
        "allowedDestinations": [usdx, MERCHANT],
        "tokenLimits": [{"token": usdx, "limit": "1000000000"}],
        "chainId": waas.runtime.chain_id,
        "expiresAt": int(time.time()) + ttl,
    }
    envelope.update(overrides)
    return envelope


def grant_session(api: Api, waas: Waas, owner: Actor, backend: Actor) -> str:
    """Authorize and approve a USDX-transfer session of ``backend`` on ``owner``'s wallet."""
    pending = api.ok(
        "AuthorizeRemoteAccess",
        {
            "credentialId": backend.credential_id,
            "walletId": owner.extra["walletId"],
            "envelope": transfer_envelope(waas),
        },
        owner,
    )
    assert owner.secret is not None
    signature = sign_digest(owner.secret, bytes.fromhex(pending["grantDigest"][2:]))
    api.ok(
        "ApproveSession",
        {"sessionId": pending["sessionId"], "signature": "0x" + signature.hex()},
        owner,
    )
    settle(waas)  # approved sessions are active once the chain shows them installed
    return str(pending["sessionId"])


def settle(waas: Waas, rounds: int = 3) -> None:
    """Run the dispatcher until queued on-chain work (installs, removals) is mined and its
    outcome recorded: the API tests run without the background relayer."""
    for _ in range(rounds):
        waas.dispatcher.step()


def transfer_call(
    waas: Waas, owner: Actor, session_id: str, amount: str = "1000000"
) -> dict[str, Any]:
    return {
        "walletId": owner.extra["walletId"],
        "sessionId": session_id,
        "contract": waas.runtime.deployment.token("USDX"),
        "method": TRANSFER,
        "args": [MERCHANT, amount],
    }


@dataclass
class World:
    """A backend with an active session on a fresh owner's wallet."""

    owner: Actor
    backend: Actor
    session_id: str

    @property
    def wallet_id(self) -> str:
        return str(self.owner.extra["walletId"])


def new_world(api: Api, waas: Waas) -> World:
    owner = create_owner(api)
    backend = register_backend(api)
    return World(owner, backend, grant_session(api, waas, owner, backend))


def quote(api: Api, waas: Waas, world: World, amount: str = "1000000") -> str:
    answer = api.ok(
        "PrepareEthereumContractCall",
        transfer_call(waas, world.owner, world.session_id, amount),
        world.backend,
    )
    assert answer["status"] == "quoted"
    return str(answer["txnId"])


def ops_actors(count: int = 2) -> list[tuple[Actor, OpsCredential]]:
    result = []
    for i in range(count):
        actor = Actor.secp256k1()
        actor.credential_id = f"ops-{i}-{secrets.token_hex(4)}"
        assert isinstance(actor.signer, Secp256k1RequestSigner)
        result.append(
            (actor, OpsCredential(actor.credential_id, actor.signer.alg, actor.signer.address))
        )
    return result
