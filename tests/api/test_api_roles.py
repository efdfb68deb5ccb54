"""Role and binding refusals: the API builds the caller, the service refuses, nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from api_support import (
    Actor,
    Api,
    World,
    create_owner,
    new_world,
    quote,
    refused,
    register_backend,
    transfer_envelope,
)

from sessionward.service.waas import Waas


@pytest.mark.parametrize(
    "method",
    ["AuthorizeRemoteAccess", "ListAccess", "RevokeAccess"],
)
def test_a_backend_cannot_call_owner_methods(
    api: Api, world: World, waas: Waas, method: str
) -> None:
    bodies: dict[str, dict[str, Any]] = {
        "AuthorizeRemoteAccess": {
            "credentialId": world.backend.credential_id,
            "walletId": world.wallet_id,
            "envelope": transfer_envelope(waas),
        },
        "ListAccess": {"walletId": world.wallet_id},
        "RevokeAccess": {"walletId": world.wallet_id, "credentialId": world.backend.credential_id},
    }
    refused(api.call(method, bodies[method], world.backend), 403, "ROLE_FORBIDDEN")
    record = waas.runtime.store.sessions.get(world.session_id)
    assert record is not None and record.status == "active"
    assert len(waas.runtime.store.sessions.of_wallet(world.wallet_id)) == 1


def test_a_backend_cannot_approve_a_session(api: Api, world: World) -> None:
    response = api.call(
        "ApproveSession",
        {"sessionId": world.session_id, "signature": "0x" + "11" * 65},
        world.backend,
    )
    refused(response, 403, "ROLE_FORBIDDEN")


def test_the_owner_of_wallet_a_cannot_act_on_wallet_b(api: Api, world: World, waas: Waas) -> None:
    other = create_owner(api)
    refused(api.call("ListAccess", {"walletId": world.wallet_id}, other), 403, "ROLE_FORBIDDEN")
    refused(
        api.call(
            "AuthorizeRemoteAccess",
            {
                "credentialId": world.backend.credential_id,
                "walletId": world.wallet_id,
                "envelope": transfer_envelope(waas),
            },
            other,
        ),
        403,
        "ROLE_FORBIDDEN",
    )
    refused(
        api.call(
            "RevokeAccess",
            {"walletId": world.wallet_id, "credentialId": world.backend.credential_id},
            other,
        ),
        403,
        "ROLE_FORBIDDEN",
    )
    refused(api.call("GetSession", {"sessionId": world.session_id}, other), 403, "ROLE_FORBIDDEN")
    record = waas.runtime.store.sessions.get(world.session_id)
    assert record is not None and record.status == "active"
    assert len(waas.runtime.store.sessions.of_wallet(world.wallet_id)) == 1


def test_backend_b_cannot_execute_backend_as_quote(api: Api, world: World, waas: Waas) -> None:
    txn_id = quote(api, waas, world)
    intruder = register_backend(api)
    refused(api.call("Execute", {"txnId": txn_id}, intruder), 403, "ROLE_FORBIDDEN")
    refused(api.call("TransactionStatus", {"txnId": txn_id}, intruder), 403, "ROLE_FORBIDDEN")
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None and txn.status == "quoted"


def test_backend_b_cannot_use_or_read_backend_as_session(
    api: Api, world: World, waas: Waas
) -> None:
    intruder = register_backend(api)
    body = {
        "walletId": world.wallet_id,
        "sessionId": world.session_id,
        "contract": waas.runtime.deployment.token("USDX"),
        "method": "transfer(address,uint256)",
        "args": ["0x3333333333333333333333333333333333333333", "1"],
    }
    refused(api.call("PrepareEthereumContractCall", body, intruder), 403, "ROLE_FORBIDDEN")
    refused(
        api.call("GetSession", {"sessionId": world.session_id}, intruder), 403, "ROLE_FORBIDDEN"
    )
    refused(
        api.call("GetSessionUsage", {"sessionId": world.session_id}, intruder),
        403,
        "ROLE_FORBIDDEN",
    )
    assert waas.runtime.store.transactions.of_session(world.session_id) == []


def test_an_owner_cannot_prepare_or_execute(api: Api, world: World, waas: Waas) -> None:
    txn_id = quote(api, waas, world)
    refused(api.call("Execute", {"txnId": txn_id}, world.owner), 403, "ROLE_FORBIDDEN")
    txn = waas.runtime.store.transactions.get(txn_id)
    assert txn is not None and txn.status == "quoted"


@pytest.mark.parametrize("who", ["backend", "owner"])
def test_ops_methods_refuse_everyone_else(api: Api, world: World, waas: Waas, who: str) -> None:
    actor = world.backend if who == "backend" else world.owner
    refused(
        api.call("EmergencyRevoke", {"scope": "global", "reason": "not mine to pull"}, actor),
        403,
        "ROLE_FORBIDDEN",
    )
    refused(
        api.call(
            "EmergencyRevoke",
            {"scope": "session", "target": world.session_id, "reason": "nope"},
            actor,
        ),
        403,
        "ROLE_FORBIDDEN",
    )
    refused(api.call("LiftFreeze", {"scope": "global"}, actor), 403, "ROLE_FORBIDDEN")
    assert waas.runtime.store.freezes.active() == []
    record = waas.runtime.store.sessions.get(world.session_id)
    assert record is not None and record.status == "active"


def test_ops_cannot_execute(api: Api, world: World, waas: Waas, ops: list[Actor]) -> None:
    txn_id = quote(api, waas, world)
    refused(api.call("Execute", {"txnId": txn_id}, ops[0]), 403, "ROLE_FORBIDDEN")


def test_a_backend_cannot_revoke_another_backends_credential(
    api: Api, world: World, waas: Waas
) -> None:
    intruder = register_backend(api)
    response = api.call("RevokeCredential", {"credentialId": world.backend.credential_id}, intruder)
    refused(response, 403, "ROLE_FORBIDDEN")
    record = waas.runtime.store.credentials.get(world.backend.credential_id)
    assert record is not None and record.revoked_at is None
    session = waas.runtime.store.sessions.get(world.session_id)
    assert session is not None and session.status == "active"


def test_an_owner_cannot_revoke_a_backend_credential(api: Api, world: World, waas: Waas) -> None:
    response = api.call(
        "RevokeCredential", {"credentialId": world.backend.credential_id}, world.owner
    )
    refused(response, 403, "ROLE_FORBIDDEN")
    record = waas.runtime.store.credentials.get(world.backend.credential_id)
    assert record is not None and record.revoked_at is None


def test_create_wallet_must_be_signed_by_the_owner_key_itself(
    api: Api, world: World, waas: Waas
) -> None:
    owner = world.owner
    wallets_before = len(waas.runtime.store.sessions.of_wallet(world.wallet_id))
    response = api.call(
        "CreateWallet", {"alg": owner.signer.alg, "publicKey": owner.public_key}, owner
    )
    refused(response, 403, "ROLE_FORBIDDEN")
    assert len(waas.runtime.store.sessions.of_wallet(world.wallet_id)) == wallets_before


def test_a_backend_cannot_register_a_device_key(api: Api, world: World) -> None:
    device = Actor.p256()
    response = api.call(
        "RegisterCredential",
        {"alg": device.signer.alg, "publicKey": device.public_key},
        world.backend,
    )
    refused(response, 403, "ROLE_FORBIDDEN")


def test_an_owner_of_another_wallet_cannot_read_its_transactions(
    api: Api, world: World, waas: Waas
) -> None:
    txn_id = quote(api, waas, world)
    other = new_world(api, waas)
    refused(api.call("TransactionStatus", {"txnId": txn_id}, other.owner), 403, "ROLE_FORBIDDEN")
