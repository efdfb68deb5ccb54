"""Idempotency-Key: one execution per key, the same answer to every retry."""

from __future__ import annotations

import hashlib
import secrets

from api_support import Api, World, new_world, quote, refused, transfer_call

from sessionward.service.waas import Waas


def _key() -> str:
    return "key-" + secrets.token_hex(8)


def test_the_same_key_twice_executes_once_and_answers_the_same(
    api: Api, world: World, waas: Waas
) -> None:
    txn_id = quote(api, waas, world)
    key = _key()
    first = api.call("Execute", {"txnId": txn_id}, world.backend, headers={"Idempotency-Key": key})
    assert first.status_code == 200
    decisions = len(waas.runtime.store.decisions.of_session(world.session_id))
    second = api.call("Execute", {"txnId": txn_id}, world.backend, headers={"Idempotency-Key": key})
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert len(waas.runtime.store.decisions.of_session(world.session_id)) == decisions


def test_a_retried_prepare_makes_one_quote(api: Api, world: World, waas: Waas) -> None:
    body = transfer_call(waas, world.owner, world.session_id)
    key = _key()
    answers = [
        api.call(
            "PrepareEthereumContractCall", body, world.backend, headers={"Idempotency-Key": key}
        )
        for _ in range(3)
    ]
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["txnId"] for a in answers}) == 1
    assert len(waas.runtime.store.transactions.of_session(world.session_id)) == 1


def test_a_refusal_is_stored_and_replayed_too(api: Api, world: World) -> None:
    key = _key()
    body = {"txnId": "txn_" + "0" * 32}
    first = api.call("Execute", body, world.backend, headers={"Idempotency-Key": key})
    refused(first, 404, "TRANSACTION_UNKNOWN")
    second = api.call("Execute", body, world.backend, headers={"Idempotency-Key": key})
    assert second.status_code == 404 and second.content == first.content


def test_the_same_key_with_another_body_is_a_conflict(api: Api, world: World, waas: Waas) -> None:
    first_txn, second_txn = quote(api, waas, world), quote(api, waas, world)
    key = _key()
    assert (
        api.call(
            "Execute", {"txnId": first_txn}, world.backend, headers={"Idempotency-Key": key}
        ).status_code
        == 200
    )
    reused = api.call(
        "Execute", {"txnId": second_txn}, world.backend, headers={"Idempotency-Key": key}
    )
    doc = refused(reused, 409, "IDEMPOTENCY_KEY_REUSED")
    assert doc["reason"] == "Idempotency-Key"
    txn = waas.runtime.store.transactions.get(second_txn)
    assert txn is not None and txn.status == "quoted"


def test_the_same_key_for_another_method_is_a_conflict(api: Api, world: World, waas: Waas) -> None:
    key = _key()
    txn_id = quote(api, waas, world)
    api.call("Execute", {"txnId": txn_id}, world.backend, headers={"Idempotency-Key": key})
    other = api.call(
        "RevokeCredential",
        {"credentialId": world.backend.credential_id},
        world.backend,
        headers={"Idempotency-Key": key},
    )
    refused(other, 409, "IDEMPOTENCY_KEY_REUSED")
    record = waas.runtime.store.credentials.get(world.backend.credential_id)
    assert record is not None and record.revoked_at is None


def test_a_key_in_flight_is_a_conflict(api: Api, world: World, waas: Waas) -> None:
    txn_id = quote(api, waas, world)
    key = _key()
    body = b'{"txnId":"' + txn_id.encode() + b'"}'
    claim = waas.runtime.store.idempotency.claim(
        credential_id=world.backend.credential_id,
        key=key,
        method="Execute",
        request_hash=hashlib.sha256(body).hexdigest(),
        now=waas.runtime.now(),
    )
    assert claim.state == "claimed"
    response = api.post_raw(
        "Execute",
        body,
        {"Oms-Wallet-Signature": world.backend.header("Execute", body), "Idempotency-Key": key},
    )
    refused(response, 409, "IDEMPOTENCY_KEY_REUSED")
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None and txn.status == "quoted"


def test_keys_are_scoped_to_the_credential(api: Api, world: World, waas: Waas) -> None:
    other = new_world(api, waas)
    key = _key()
    first = api.call("ListSessions", {}, world.backend, headers={"Idempotency-Key": key})
    assert first.status_code == 200
    mine = api.call(
        "Execute",
        {"txnId": quote(api, waas, world)},
        world.backend,
        headers={"Idempotency-Key": key},
    )
    theirs = api.call(
        "Execute",
        {"txnId": quote(api, waas, other)},
        other.backend,
        headers={"Idempotency-Key": key},
    )
    assert mine.status_code == 200 and theirs.status_code == 200
    assert mine.json()["txnId"] != theirs.json()["txnId"]


def test_a_malformed_key_is_refused(api: Api, world: World, waas: Waas) -> None:
    txn_id = quote(api, waas, world)
    response = api.call(
        "Execute", {"txnId": txn_id}, world.backend, headers={"Idempotency-Key": "x" * 129}
    )
    doc = refused(response, 400, "INPUT_MALFORMED")
    assert doc["reason"] == "Idempotency-Key"
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None and txn.status == "quoted"


def test_a_forged_request_cannot_poison_a_key(api: Api, world: World, waas: Waas) -> None:
    txn_id = quote(api, waas, world)
    key = _key()
    forged = api.post_raw(
        "Execute",
        b'{"txnId":"' + txn_id.encode() + b'"}',
        {"Oms-Wallet-Signature": world.owner.header("Execute", b"{}"), "Idempotency-Key": key},
    )
    assert forged.status_code == 401
    genuine = api.call(
        "Execute", {"txnId": txn_id}, world.backend, headers={"Idempotency-Key": key}
    )
    assert genuine.status_code == 200
