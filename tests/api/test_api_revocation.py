"""After revocation: attempts are refused with the exact code *and* recorded as decisions."""

from __future__ import annotations

from api_support import Actor, Api, World, quote, refused, transfer_call

from sessionward.service.waas import Waas


def _denials(waas: Waas, world: World, code: str) -> list[str]:
    return [
        e.id
        for e in waas.runtime.store.decisions.of_session(world.session_id)
        if e.verdict == "deny" and code in e.reasons
    ]


def test_a_revoked_backends_execute_is_refused_and_recorded(
    api: Api, world: World, waas: Waas
) -> None:
    txn_id = quote(api, waas, world)
    api.ok("RevokeCredential", {"credentialId": world.backend.credential_id}, world.backend)
    response = api.call("Execute", {"txnId": txn_id}, world.backend)
    assert response.status_code == 403, response.text
    doc = response.json()
    assert doc["error"] == "PolicyDenied"
    assert doc["code"] in ("CREDENTIAL_REVOKED", "SESSION_REVOKED")
    assert set(doc["reasons"]) >= {"SESSION_REVOKED", "CREDENTIAL_REVOKED"}
    assert doc["violations"] and doc["reason"] == doc["violations"][0]["rule"]
    assert doc["decisionId"] in _denials(waas, world, doc["code"])
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None and txn.status == "denied"


def test_execute_after_the_owner_revoked_the_session_is_refused_and_recorded(
    api: Api, world: World, waas: Waas
) -> None:
    txn_id = quote(api, waas, world)
    api.ok(
        "RevokeAccess",
        {"walletId": world.wallet_id, "credentialId": world.backend.credential_id},
        world.owner,
    )
    doc = refused(api.call("Execute", {"txnId": txn_id}, world.backend), 403, "SESSION_REVOKED")
    assert doc["decisionId"] in _denials(waas, world, "SESSION_REVOKED")


def test_prepare_by_a_revoked_backend_is_refused_and_recorded(
    api: Api, world: World, waas: Waas
) -> None:
    api.ok("RevokeCredential", {"credentialId": world.backend.credential_id}, world.backend)
    response = api.call(
        "PrepareEthereumContractCall",
        transfer_call(waas, world.owner, world.session_id),
        world.backend,
    )
    assert response.status_code == 403
    assert response.json()["decisionId"] in _denials(waas, world, "CREDENTIAL_REVOKED")


def test_a_revoked_credential_is_refused_elsewhere(api: Api, world: World) -> None:
    api.ok("RevokeCredential", {"credentialId": world.backend.credential_id}, world.backend)
    refused(api.call("ListSessions", {}, world.backend), 401, "CREDENTIAL_REVOKED")
    refused(
        api.call("GetSession", {"sessionId": world.session_id}, world.backend),
        401,
        "CREDENTIAL_REVOKED",
    )


def test_an_emergency_credential_revocation_stops_the_backend(
    api: Api, world: World, waas: Waas, ops: list[Actor]
) -> None:
    txn_id = quote(api, waas, world)
    api.ok(
        "EmergencyRevoke",
        {"scope": "credential", "target": world.backend.credential_id, "reason": "key leaked"},
        ops[1],
    )
    response = api.call("Execute", {"txnId": txn_id}, world.backend)
    assert response.status_code == 403
    doc = response.json()
    assert doc["error"] == "PolicyDenied"
    assert doc["code"] in ("CREDENTIAL_REVOKED", "SESSION_REVOKED")
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None and txn.status == "denied"


def test_an_emergency_revocation_needs_a_written_reason(
    api: Api, world: World, waas: Waas, ops: list[Actor]
) -> None:
    for body in (
        {"scope": "session", "target": world.session_id},
        {"scope": "session", "target": world.session_id, "reason": "   "},
    ):
        refused(api.call("EmergencyRevoke", body, ops[0]), 400, "REASON_REQUIRED")
    record = waas.runtime.store.sessions.get(world.session_id)
    assert record is not None and record.status == "active"
