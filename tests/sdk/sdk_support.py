"""Helpers for the SDK tests (a plain module, importable by name)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sessionward.crypto.request_signature import Secp256k1RequestSigner
from sessionward.sdk import BackendClient, OwnerClient
from sessionward.service.waas import Waas

MERCHANT = "0x3333333333333333333333333333333333333333"
TRANSFER = "transfer(address,uint256)"


def envelope(waas: Waas, *, ttl: int = 1800) -> dict[str, Any]:
    usdx = waas.runtime.deployment.token("USDX")
    return {
        "capabilities": ["erc20.transfer"],
        "allowedDestinations": [usdx, MERCHANT],
        "tokenLimits": [{"token": usdx, "limit": "1000000000"}],
        "chainId": waas.runtime.chain_id,
        "expiresAt": int(time.time()) + ttl,
    }


def new_backend(url: str) -> BackendClient:
    backend = BackendClient(url, Secp256k1RequestSigner(secrets.token_bytes(32)))
    backend.register("Acme Agent", "https://acme.example", int(time.time()) + 86_400)
    return backend


def new_owner(url: str) -> OwnerClient:
    owner = OwnerClient(url, secrets.token_bytes(32))
    owner.create_wallet()
    return owner


def active_session(owner: OwnerClient, backend: BackendClient, waas: Waas) -> str:
    assert backend.credential_id is not None
    pending = owner.authorize_remote_access(backend.credential_id, None, envelope(waas))
    owner.approve_session(pending["sessionId"], owner.sign_grant(pending))
    session_id = str(pending["sessionId"])
    # Approved sessions are active once the relayer installed them and the chain shows it.
    deadline = time.monotonic() + 30
    while waas.runtime.store.sessions.get(session_id).status != "active":  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the approved session was not installed in time"
        time.sleep(0.05)
    return session_id
