"""Every API method's happy path, through the in-process app."""

from __future__ import annotations

import secrets
import time

import pytest
from api_support import (
    MERCHANT,
    Actor,
    Api,
    World,
    create_owner,
    grant_session,
    quote,
    refused,
    register_backend,
    settle,
    transfer_call,
    transfer_envelope,
)

from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.demo import demo_contract
from sessionward.crypto.secp256k1 import sign_digest
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.service.waas import Waas


def test_register_credential_returns_the_backend_credential(api: Api) -> None:
    backend = Actor.secp256k1()
    expires = int(time.time()) + 3600
    answer = api.ok(
        "RegisterCredential",
        {
            "alg": backend.signer.alg,
            "publicKey": backend.public_key,
            "appName": "Acme Agent",
            "appUrl": "https://acme.example",
            "expiresAt": expires,
        },
        backend,
    )
    assert answer["role"] == "backend"
    assert answer["publicKey"] == backend.public_key
    assert answer["appName"] == "Acme Agent"
    assert answer["expiresAt"] == expires
    assert answer["credentialId"].startswith("cred_")


def test_a_p256_backend_registers_and_signs_with_its_key(api: Api) -> None:
    backend = register_backend(api, Actor.p256())
    page = api.ok("ListSessions", {}, backend)
    assert page == {"items": [], "nextCursor": None}


def test_an_owner_credential_registers_a_device_key_for_its_wallet(api: Api) -> None:
    owner = create_owner(api)
    device = Actor.p256()
    answer = api.ok(
        "RegisterCredential", {"alg": device.signer.alg, "publicKey": device.public_key}, owner
    )
    assert answer["role"] == "owner"
    assert answer["walletId"] == owner.extra["walletId"]
    device.credential_id = answer["credentialId"]
    listed = api.ok("ListAccess", {"walletId": owner.extra["walletId"]}, device)
    assert listed["items"] == []


def test_inspect_credential_is_public(api: Api) -> None:
    backend = register_backend(api)
    answer = api.ok("InspectCredential", {"credentialId": backend.credential_id})
    assert answer["credentialId"] == backend.credential_id
    assert answer["appName"] == "Acme Agent"
    assert answer["appUrl"] == "https://acme.example"


def test_create_wallet_binds_the_owner_and_returns_its_credential(api: Api, waas: Waas) -> None:
    owner = Actor.secp256k1()
    salt = "0x" + secrets.token_hex(32)
    answer = api.ok(
        "CreateWallet",
        {"alg": owner.signer.alg, "publicKey": owner.public_key, "salt": salt},
        owner,
    )
    assert answer["owner"] == owner.public_key
    assert answer["ownerKind"] == "eoa"
    assert answer["chainId"] == waas.runtime.chain_id
    assert answer["ownerCredentialId"].startswith("cred_")
    record = waas.runtime.store.credentials.get(answer["ownerCredentialId"])
    assert record is not None and record.role == "owner"
    assert record.wallet_id == answer["walletId"]


def test_register_wallet_adopts_an_account_owned_by_the_signer(api: Api, waas: Waas) -> None:
    rt = waas.runtime
    owner = Actor.secp256k1()
    salt = secrets.token_bytes(32)
    factory = rt.deployment.factory
    account = rt.calls.decode_address(
        rt.chain.call(factory, rt.calls.get_address(owner.public_key, salt))
    )
    transact(
        rt.chain, rt.deployer, to=factory, data=rt.calls.create_account(owner.public_key, salt)
    )
    key = {"alg": owner.signer.alg, "publicKey": owner.public_key, "account": account}
    challenge = api.ok("GetRegistrationChallenge", key, owner)
    assert owner.secret is not None
    signature = sign_digest(owner.secret, bytes.fromhex(challenge["digest"][2:]))
    proof = {
        "nonce": challenge["nonce"],
        "deadline": challenge["deadline"],
        "signature": "0x" + signature.hex(),
    }
    answer = api.ok("RegisterWallet", {**key, "registration": proof}, owner)
    assert answer["account"] == account
    assert answer["owner"] == owner.public_key


def test_authorize_then_approve_activates_the_session(api: Api, waas: Waas) -> None:
    owner = create_owner(api)
    backend = register_backend(api)
    pending = api.ok(
        "AuthorizeRemoteAccess",
        {
            "credentialId": backend.credential_id,
            "walletId": owner.extra["walletId"],
            "envelope": transfer_envelope(waas),
        },
        owner,
    )
    assert pending["status"] == "pending"
    assert pending["grant"]["primaryType"] == "SessionGrant"
    assert "Acme Agent" in pending["summary"]
    assert owner.secret is not None
    signature = sign_digest(owner.secret, bytes.fromhex(pending["grantDigest"][2:]))
    detail = api.ok(
        "ApproveSession",
        {"sessionId": pending["sessionId"], "signature": "0x" + signature.hex()},
        owner,
    )
    # Approved: installing until the chain shows it installed (the wire still says pending).
    assert (detail["status"], detail["lifecycle"]) == ("pending", "installing")
    assert detail["credentialId"] == backend.credential_id
    settle(waas)
    record = waas.runtime.store.sessions.get(pending["sessionId"])
    assert record is not None and record.status == "active"


def test_list_access_pages_the_wallets_sessions(api: Api, waas: Waas) -> None:
    owner = create_owner(api)
    backend = register_backend(api)
    sessions = {grant_session(api, waas, owner, backend) for _ in range(3)}
    first = api.ok("ListAccess", {"walletId": owner.extra["walletId"], "limit": 2}, owner)
    assert len(first["items"]) == 2 and first["nextCursor"]
    second = api.ok(
        "ListAccess",
        {"walletId": owner.extra["walletId"], "limit": 2, "cursor": first["nextCursor"]},
        owner,
    )
    assert second["nextCursor"] is None
    assert {s["sessionId"] for s in first["items"] + second["items"]} == sessions


def test_revoke_access_revokes_the_session(api: Api, world: World, waas: Waas) -> None:
    answer = api.ok(
        "RevokeAccess",
        {
            "walletId": world.wallet_id,
            "credentialId": world.backend.credential_id,
            "sessionId": world.session_id,
        },
        world.owner,
    )
    assert answer["revokedSessions"] == [world.session_id]
    record = waas.runtime.store.sessions.get(world.session_id)
    assert record is not None and record.status == "revoking"  # until the chain removes it
    settle(waas)
    record = waas.runtime.store.sessions.get(world.session_id)
    assert record is not None and record.status == "revoked"


def test_prepare_transaction_quotes_raw_calldata(api: Api, world: World, waas: Waas) -> None:
    usdx = waas.runtime.deployment.token("USDX")
    data = encode_call(parse_signature("transfer(address,uint256)"), (MERCHANT, 5))
    answer = api.ok(
        "PrepareEthereumTransaction",
        {
            "walletId": world.wallet_id,
            "sessionId": world.session_id,
            "to": usdx,
            "value": "0",
            "data": "0x" + data.hex(),
            "chainId": waas.runtime.chain_id,
        },
        world.backend,
    )
    assert answer["status"] == "quoted"
    assert answer["verdict"] == {"allowed": True, "reasons": [], "violations": []}
    assert answer["intent"][0]["actionClass"] == "erc20.transfer"


def test_prepare_contract_call_quotes_a_signature_and_args(
    api: Api, world: World, waas: Waas
) -> None:
    answer = api.ok(
        "PrepareEthereumContractCall",
        transfer_call(waas, world.owner, world.session_id, "7"),
        world.backend,
    )
    assert answer["status"] == "quoted"
    assert answer["intent"][0]["arguments"] == [MERCHANT, "7"]


def test_execute_signs_and_queues_the_quote(api: Api, world: World, waas: Waas) -> None:
    txn_id = quote(api, waas, world)
    answer = api.ok("Execute", {"txnId": txn_id}, world.backend)
    assert answer["status"] == "pending"
    status = api.ok("TransactionStatus", {"txnId": txn_id}, world.backend)
    assert status["status"] == "pending"
    by_owner = api.ok("TransactionStatus", {"txnId": txn_id}, world.owner)
    assert by_owner["txnId"] == txn_id


def test_execute_reaches_the_chain_through_the_dispatcher(
    api: Api, world: World, waas: Waas
) -> None:
    rt = waas.runtime
    for _ in range(3):  # deploy the account, install the session
        waas.dispatcher.step()
    token = DeployedContract(rt.chain, rt.deployment.token("USDX"), demo_contract("DemoToken"))
    token.transact(rt.deployer, "mint", world.owner.extra["account"], 10**9)
    txn_id = quote(api, waas, world, "2500000")
    api.ok("Execute", {"txnId": txn_id}, world.backend)
    for _ in range(3):
        waas.dispatcher.step()
    status = api.ok("TransactionStatus", {"txnId": txn_id}, world.backend)
    assert status["status"] == "executed", status
    assert status["txHash"].startswith("0x")
    assert token.call_one("balanceOf", MERCHANT) >= 2_500_000  # type: ignore[operator]


def test_session_reads_show_the_session_and_its_usage(api: Api, world: World, waas: Waas) -> None:
    txn_id = quote(api, waas, world, "3000000")
    api.ok("Execute", {"txnId": txn_id}, world.backend)
    detail = api.ok("GetSession", {"sessionId": world.session_id}, world.backend)
    assert detail["status"] == "active" and detail["walletId"] == world.wallet_id
    assert api.ok("GetSession", {"sessionId": world.session_id}, world.owner) == detail
    usage = api.ok("GetSessionUsage", {"sessionId": world.session_id}, world.backend)
    token_limits = [u for u in usage["limits"] if u["limit"].startswith("tokenLimits")]
    assert token_limits[0]["spent"] == "3000000"
    assert token_limits[0]["max"] == "1000000000"
    listed = api.ok("ListSessions", {"limit": 10}, world.backend)
    assert [s["sessionId"] for s in listed["items"]] == [world.session_id]


def test_revoke_credential_retires_the_backend_and_its_sessions(
    api: Api, world: World, waas: Waas
) -> None:
    answer = api.ok(
        "RevokeCredential",
        {"credentialId": world.backend.credential_id, "reason": "rotating keys"},
        world.backend,
    )
    assert answer["revokedCredential"] == world.backend.credential_id
    assert answer["revokedSessions"] == [world.session_id]
    record = waas.runtime.store.credentials.get(world.backend.credential_id)
    assert record is not None and record.revoked_at is not None


def test_emergency_revoke_of_a_session_by_ops(
    api: Api, world: World, waas: Waas, ops: list[Actor]
) -> None:
    answer = api.ok(
        "EmergencyRevoke",
        {"scope": "session", "target": world.session_id, "reason": "suspicious burst"},
        ops[0],
    )
    assert answer["revokedSessions"] == [world.session_id]
    record = waas.runtime.store.sessions.get(world.session_id)
    assert record is not None and record.status == "revoking"  # until the chain removes it
    settle(waas)
    record = waas.runtime.store.sessions.get(world.session_id)
    assert record is not None and record.status == "revoked"


def test_a_global_freeze_stops_execution_until_two_ops_lift_it(
    api: Api, world: World, waas: Waas, ops: list[Actor]
) -> None:
    txn_id = quote(api, waas, world)
    frozen = api.ok("EmergencyRevoke", {"scope": "global", "reason": "incident 42"}, ops[0])
    assert frozen["freezeId"]
    try:
        refused(api.call("Execute", {"txnId": txn_id}, world.backend), 403, "GLOBAL_FREEZE")
        first = api.call("LiftFreeze", {"scope": "global"}, ops[0])
        refused(first, 409, "FREEZE_LIFT_NEEDS_SECOND_OPS")
    finally:
        lifted = api.ok("LiftFreeze", {"scope": "global"}, ops[1])
    assert lifted["lifted"] >= 1
    assert sorted(lifted["approvals"]) == sorted(o.credential_id for o in ops)
    assert (
        api.ok("Execute", {"txnId": quote(api, waas, world)}, world.backend)["status"] == "pending"
    )


def test_lift_freeze_of_a_wallet_by_one_ops(
    api: Api, world: World, waas: Waas, ops: list[Actor]
) -> None:
    api.ok("EmergencyRevoke", {"scope": "wallet", "target": world.wallet_id, "reason": "x"}, ops[0])
    lifted = api.ok("LiftFreeze", {"scope": "wallet", "target": world.wallet_id}, ops[1])
    assert lifted["lifted"] == 1
    wallet = waas.runtime.store.wallets.get(world.wallet_id)
    assert wallet is not None


@pytest.mark.parametrize(
    ("submission", "code"),
    [("userop", "USER_OPERATION_REFUSED"), ("carrier-pigeon", "INPUT_MALFORMED")],
    ids=["no-bundler-configured", "unknown"],
)
def test_execute_with_a_submission_the_network_cannot_make_is_refused_and_signs_nothing(
    api: Api, world: World, waas: Waas, submission: str, code: str
) -> None:
    """The embedded default has no bundler: 'userop' is a client error, never a 500."""
    txn_id = quote(api, waas, world)
    refused(
        api.call("Execute", {"txnId": txn_id, "submission": submission}, world.backend), 400, code
    )
    status = api.ok("TransactionStatus", {"txnId": txn_id}, world.backend)
    assert status["status"] == "quoted"
    assert waas.runtime.store.user_operations.of_transaction(txn_id) == []
