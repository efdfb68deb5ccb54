"""End to end: the WaaS raises an anomaly alert on the policy path, the dispatcher is its alert
sink, and a real receiver gets the signed event and verifies it with the SDK."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from webhook_support import Receiver

from sessionward.crypto.request_signature import ALG_SECP256K1
from sessionward.crypto.secp256k1 import address_from_secret, sign_digest
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.reasons import ReasonCode
from sessionward.service.callers import Caller, SelfSigned
from sessionward.service.config import Settings
from sessionward.service.errors import ServiceError
from sessionward.service.runtime import build_runtime
from sessionward.service.waas import Waas
from sessionward.service.webhooks import WebhookDispatcher

TRANSFER_OWNERSHIP = parse_signature("transferOwnership(address)")


@pytest.fixture
def waas_with_webhooks(
    tmp_path: Path, receiver: Receiver, dispatchers: Callable[..., WebhookDispatcher]
) -> Iterator[tuple[Waas, WebhookDispatcher]]:
    """A Waas on embedded defaults whose alert sink is a dispatcher posting to ``receiver``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SESSIONWARD_DATABASE_URL", raising=False)
        runtime = build_runtime(Settings(data_dir=tmp_path))
    dispatcher = dispatchers([receiver.url])
    waas = Waas(runtime, alert_sink=dispatcher)
    yield waas, dispatcher
    waas.stop()


def approved_session(waas: Waas) -> tuple[str, str, Caller]:
    """(wallet id, session id, backend caller) of a swap session the owner approved."""
    owner_secret = secrets.token_bytes(32)
    wallet = waas.wallets.create(SelfSigned(ALG_SECP256K1, address_from_secret(owner_secret)))
    owner = Caller(wallet["ownerCredentialId"] or "", "owner", wallet["walletId"])
    rt = waas.runtime
    backend = waas.credentials.register_backend(
        SelfSigned(ALG_SECP256K1, address_from_secret(secrets.token_bytes(32))),
        app_name="Webhook Test Agent",
        app_url="https://agent.example",
        expires_at=rt.now() + 3600,
    )
    pending = waas.sessions.authorize(
        owner,
        credential_id=backend["credentialId"],
        wallet_id=wallet["walletId"],
        envelope={
            "capabilities": ["swap.execute"],
            "maxValueUsd": 500,
            "allowedDestinations": [rt.deployment.router],
            "chainId": rt.chain_id,
            "expiresAt": rt.now() + 1800,
        },
    )
    digest = bytes.fromhex(pending["grantDigest"].removeprefix("0x"))
    waas.sessions.approve(
        owner, session_id=pending["sessionId"], signature=sign_digest(owner_secret, digest)
    )
    # Approval answers "installing"; the session is active once the chain shows it installed.
    for _ in range(3):
        waas.dispatcher.step()
    return wallet["walletId"], pending["sessionId"], Caller(backend["credentialId"], "backend")


def test_a_forbidden_action_attempt_reaches_the_receiver_as_a_signed_alert(
    waas_with_webhooks: tuple[Waas, WebhookDispatcher], receiver: Receiver
) -> None:
    waas, dispatcher = waas_with_webhooks
    wallet_id, session_id, backend = approved_session(waas)
    hijack = encode_call(TRANSFER_OWNERSHIP, ("0x" + "11" * 20,))

    with pytest.raises(ServiceError) as refused:
        waas.transactions.prepare(
            backend,
            wallet_id=wallet_id,
            session_id=session_id,
            to=waas.runtime.deployment.router,
            value=0,
            data=hijack,
        )

    assert refused.value.code is ReasonCode.NON_DELEGABLE_ACTION
    [got] = receiver.wait_for(1)
    assert got.refusal is None  # the SDK verifier accepts it
    assert got.event is not None
    alert = got.event["alert"]
    assert alert["rule"] == "forbidden_action_attempt"
    assert alert["severity"] == "critical"
    assert alert["sessionId"] == session_id
    assert alert["walletId"] == wallet_id
    assert alert["credentialId"] == backend.credential_id
    assert alert["actionTaken"] == f"revoked session {session_id}"
    assert alert["detail"]["reasons"] == ["NON_DELEGABLE_ACTION"]
    stored = waas.runtime.store.alerts.get(alert["id"])
    assert stored is not None and stored.at == alert["at"] and stored.rule == alert["rule"]
    assert dispatcher.flush()
    assert dispatcher.stats().delivered == 1
