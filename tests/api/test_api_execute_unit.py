"""Execute commits as one unit: its replay nonce, idempotency key, reservation, signature,
audit record and decision all commit together, or none of them does."""

from __future__ import annotations

import secrets

import pytest
from api_support import Api, World, quote, raw_json, refused

from sessionward.service.waas import Waas

SIG = "Oms-Wallet-Signature"


def _state(waas: Waas, world: World, txn_id: str) -> tuple[object, ...]:
    store = waas.runtime.store
    txn = store.transactions.get(txn_id)
    assert txn is not None
    return (
        txn.status,
        txn.signature,
        store.budget.usage_of(world.session_id),
        len(store.decisions.of_session(world.session_id)),
        len(store.audit.records(world.wallet_id)),
    )


def test_a_failure_after_signing_leaves_nothing_and_the_same_request_can_be_retried(
    api: Api, waas: Waas, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server fault between the signature and the answer: nothing of the Execute survives
    (no signature, no spend, no record); its exact request, re-sent, then executes once."""
    txn_id = quote(api, waas, world)
    before = _state(waas, world, txn_id)
    body = raw_json({"txnId": txn_id})
    headers = {
        SIG: world.backend.header("Execute", body),
        "Idempotency-Key": "key-" + secrets.token_hex(8),
    }

    def fail(**_kwargs: object) -> None:
        raise RuntimeError("injected: the answer could not be stored")

    with monkeypatch.context() as patch:
        patch.setattr(waas.runtime.store.idempotency, "complete", fail)
        broken = api.post_raw("Execute", body, headers)
    assert broken.status_code == 500
    assert _state(waas, world, txn_id) == before

    retried = api.post_raw("Execute", body, headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    # Now it has executed, its nonce is spent: a third sending is a replay.
    refused(api.post_raw("Execute", body, headers), 401, "NONCE_REPLAYED")
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None and txn.status == "pending" and txn.signature is not None


def test_a_refused_execute_keeps_its_records_and_its_nonce(
    api: Api, waas: Waas, world: World
) -> None:
    """A refusal is an answer, not a failure: its decision is recorded and the request's nonce
    is spent, so the same signed request is a replay."""
    body = raw_json({"txnId": "txn_" + "0" * 32})
    header = world.backend.header("Execute", body)
    refused(api.post_raw("Execute", body, {SIG: header}), 404, "TRANSACTION_UNKNOWN")
    refused(api.post_raw("Execute", body, {SIG: header}), 401, "NONCE_REPLAYED")


def test_an_execute_denied_by_policy_commits_its_denial(api: Api, waas: Waas, world: World) -> None:
    txn_id = quote(api, waas, world)
    decisions = len(waas.runtime.store.decisions.of_session(world.session_id))
    api.ok(
        "RevokeAccess",
        {
            "walletId": world.wallet_id,
            "credentialId": world.backend.credential_id,
            "sessionId": world.session_id,
        },
        world.owner,
    )
    denied = api.call("Execute", {"txnId": txn_id}, world.backend)
    assert denied.status_code == 403, denied.text
    assert denied.json()["decisionId"]
    events = waas.runtime.store.decisions.of_session(world.session_id)
    assert len(events) == decisions + 1 and events[-1].verdict == "deny"
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None and txn.status == "denied" and txn.signature is None


def test_an_execute_reads_its_credential_once(
    api: Api, waas: Waas, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authentication reads the credential; the session view reuses that read (same unit)."""
    txn_id = quote(api, waas, world)
    credentials = waas.runtime.store.credentials
    read = credentials.get
    reads: list[str] = []

    def counted(credential_id: str) -> object:
        reads.append(credential_id)
        return read(credential_id)

    monkeypatch.setattr(credentials, "get", counted)
    body = raw_json({"txnId": txn_id})
    answer = api.post_raw("Execute", body, {SIG: world.backend.header("Execute", body)})
    assert answer.status_code == 200, answer.text
    assert reads == [world.backend.credential_id]
