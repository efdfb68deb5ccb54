"""The service delivers its alerts as signed webhooks when URLs are configured."""

from __future__ import annotations

import base64
import secrets
from dataclasses import replace
from pathlib import Path

import pytest
from webhook_support import Receiver

from sessionward.crypto.secp256k1 import address_from_secret
from sessionward.service.callers import Caller
from sessionward.service.config import OpsCredential, Settings
from sessionward.service.waas import Waas
from sessionward.service.webhooks import WebhookSigningKey


def test_an_emergency_revoke_reaches_the_webhook_signed_with_the_configured_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("SESSIONWARD_WEBHOOK_KEY", secret)
    public = WebhookSigningKey.from_text(secret).public_key_b64
    with Receiver(public) as receiver:
        _revoke_and_check(tmp_path, receiver)


def _revoke_and_check(tmp_path: Path, receiver: Receiver) -> None:
    ops = OpsCredential("ops-1", "ecdsa-p256k-eip191", address_from_secret(secrets.token_bytes(32)))
    settings = replace(
        Settings(data_dir=tmp_path, ops_credentials=(ops,)),
        webhook_urls=(receiver.url,),
        run_relayer=False,
    )
    waas = Waas.from_settings(settings)
    try:
        waas.revocations.emergency_revoke(
            Caller("ops-1", "ops"), scope="global", target=None, reason="drill"
        )
        (delivered,) = receiver.wait_for(1)
    finally:
        waas.stop()
    assert delivered.refusal is None, delivered.refusal
    assert delivered.event is not None
    assert delivered.event["alert"]["rule"] == "emergency_revoke"
    assert delivered.event["alert"]["detail"]["reason"] == "drill"
