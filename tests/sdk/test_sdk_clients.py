"""The SDK clients against a real server: every call signed, every answer a plain dict,
every refusal a SessionWardApiError with the API's fields."""

from __future__ import annotations

import secrets
import time

import pytest
from sdk_support import MERCHANT, TRANSFER, active_session, envelope, new_backend, new_owner

from sessionward.chain.contracts import DeployedContract, transact
from sessionward.chain.demo import demo_contract
from sessionward.crypto.p256 import generate_private_key
from sessionward.domain.abi import encode_call, parse_signature
from sessionward.sdk import (
    BackendClient,
    GrantVerificationError,
    OpsClient,
    OwnerClient,
    P256RequestSigner,
    SessionWardApiError,
)
from sessionward.sdk.owner import check_registration_challenge
from sessionward.service.waas import Waas


def _mint(waas: Waas, account: str, amount: int) -> DeployedContract:
    rt = waas.runtime
    token = DeployedContract(rt.chain, rt.deployment.token("USDX"), demo_contract("DemoToken"))
    token.transact(rt.deployer, "mint", account, amount)
    return token


def test_the_full_flow_executes_a_transfer_on_chain(url: str, waas: Waas) -> None:
    backend = new_backend(url)
    owner = new_owner(url)
    assert owner.credential_id and owner.wallet_id and owner.account
    consent = owner.inspect_credential(str(backend.credential_id))
    assert consent["appName"] == "Acme Agent"
    pending = owner.authorize_remote_access(
        str(backend.credential_id), owner.wallet_id, envelope(waas)
    )
    assert pending["status"] == "pending"
    approved = owner.approve_session(pending["sessionId"], owner.sign_grant(pending))
    assert (approved["status"], approved["lifecycle"]) == ("pending", "installing")
    deadline = time.monotonic() + 30  # active once the chain shows the session installed
    while owner.get_session(pending["sessionId"])["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    token = _mint(waas, owner.account, 10**9)
    session = pending["sessionId"]
    quote = backend.prepare_contract_call(
        owner.wallet_id, session, token.address, TRANSFER, [MERCHANT, 4_000_000]
    )
    assert quote["status"] == "quoted"
    queued = backend.execute(quote["txnId"])
    assert queued["status"] == "pending"
    final = backend.wait_for_transaction(quote["txnId"], timeout=30.0)
    assert final["status"] == "executed", final
    assert owner.transaction_status(quote["txnId"])["txHash"] == final["txHash"]
    usage = backend.get_session_usage(session)
    spent = [u for u in usage["limits"] if u["limit"].startswith("tokenLimits")]
    assert spent[0]["spent"] == "4000000"
    assert backend.get_session(session)["status"] == "active"
    assert owner.get_session_usage(session) == usage


def test_prepare_transaction_takes_raw_calldata(url: str, waas: Waas) -> None:
    backend, owner = new_backend(url), new_owner(url)
    session = active_session(owner, backend, waas)
    data = encode_call(parse_signature(TRANSFER), (MERCHANT, 9))
    usdx = waas.runtime.deployment.token("USDX")
    quote = backend.prepare_transaction(str(owner.wallet_id), session, usdx, 0, data)
    assert quote["status"] == "quoted"
    assert quote["data"] == "0x" + data.hex()


def test_a_policy_denial_raises_with_every_field(url: str, waas: Waas) -> None:
    backend, owner = new_backend(url), new_owner(url)
    session = active_session(owner, backend, waas)
    usdx = waas.runtime.deployment.token("USDX")
    with pytest.raises(SessionWardApiError) as raised:
        backend.prepare_contract_call(
            str(owner.wallet_id), session, usdx, TRANSFER, ["0x" + "55" * 20, 1]
        )
    error = raised.value
    assert (error.status, error.code, error.kind) == (403, "ARG_RULE_VIOLATED", "PolicyDenied")
    assert error.decision_id and error.decision_id.startswith("dec_")
    assert error.request_id and error.request_id.startswith("req_")
    assert error.reasons == ["ARG_RULE_VIOLATED"]
    assert error.violations and error.reason == error.violations[0]["rule"]


def test_execute_with_the_same_idempotency_key_executes_once(url: str, waas: Waas) -> None:
    backend, owner = new_backend(url), new_owner(url)
    session = active_session(owner, backend, waas)
    usdx = waas.runtime.deployment.token("USDX")
    quote = backend.prepare_contract_call(
        str(owner.wallet_id), session, usdx, TRANSFER, [MERCHANT, 1]
    )
    key = secrets.token_hex(8)
    first = backend.execute(quote["txnId"], idempotency_key=key)
    again = backend.execute(quote["txnId"], idempotency_key=key)
    assert again == first
    with pytest.raises(SessionWardApiError) as raised:
        backend.execute(quote["txnId"])  # a fresh key: a second execution, refused by state
    assert raised.value.code == "TRANSACTION_NOT_QUOTED"


def test_sessions_are_listed_by_page(url: str, waas: Waas) -> None:
    backend, owner = new_backend(url), new_owner(url)
    sessions = {active_session(owner, backend, waas) for _ in range(3)}
    first = backend.list_sessions(limit=2)
    second = backend.list_sessions(cursor=first["nextCursor"], limit=2)
    assert second["nextCursor"] is None
    assert {s["sessionId"] for s in first["items"] + second["items"]} == sessions
    assert {s["sessionId"] for s in owner.list_access()["items"]} == sessions


def test_after_the_owner_revokes_access_execution_is_refused(url: str, waas: Waas) -> None:
    backend, owner = new_backend(url), new_owner(url)
    session = active_session(owner, backend, waas)
    usdx = waas.runtime.deployment.token("USDX")
    quote = backend.prepare_contract_call(
        str(owner.wallet_id), session, usdx, TRANSFER, [MERCHANT, 1]
    )
    revoked = owner.revoke_access(None, str(backend.credential_id), session)
    assert revoked["revokedSessions"] == [session]
    with pytest.raises(SessionWardApiError) as raised:
        backend.execute(quote["txnId"])
    assert (raised.value.status, raised.value.code) == (403, "SESSION_REVOKED")
    assert raised.value.decision_id


def test_a_backend_retires_its_credential(url: str, waas: Waas) -> None:
    backend, owner = new_backend(url), new_owner(url)
    session = active_session(owner, backend, waas)
    answer = backend.revoke_credential("rotating keys")
    assert answer["revokedSessions"] == [session]
    with pytest.raises(SessionWardApiError) as raised:
        backend.list_sessions()
    assert (raised.value.status, raised.value.code) == (401, "CREDENTIAL_REVOKED")


def test_ops_freeze_a_wallet_and_lift_it(url: str, waas: Waas, ops: list[OpsClient]) -> None:
    backend, owner = new_backend(url), new_owner(url)
    session = active_session(owner, backend, waas)
    frozen = ops[0].emergency_revoke("wallet", owner.wallet_id, "suspicious activity")
    assert frozen["revokedSessions"] == [session] and frozen["freezeId"]
    lifted = ops[1].lift_freeze("wallet", owner.wallet_id)
    assert lifted["lifted"] == 1


def test_a_global_freeze_needs_two_ops_to_lift(url: str, ops: list[OpsClient]) -> None:
    ops[0].emergency_revoke("global", None, "incident drill")
    with pytest.raises(SessionWardApiError) as raised:
        ops[0].lift_freeze("global")
    assert raised.value.code == "FREEZE_LIFT_NEEDS_SECOND_OPS"
    assert ops[1].lift_freeze("global")["lifted"] >= 1


def test_a_p256_backend_registers_and_calls(url: str) -> None:
    backend = BackendClient(url, P256RequestSigner(generate_private_key()))
    credential = backend.register("Device Agent", None, int(time.time()) + 3600)
    assert credential["alg"] == "ecdsa-p256-sha256"
    assert backend.list_sessions() == {"items": [], "nextCursor": None}


def test_an_owner_device_key_signs_for_the_wallet(url: str) -> None:
    owner = new_owner(url)
    device_signer = P256RequestSigner(generate_private_key())
    device = owner.register_device(device_signer.alg, "0x" + device_signer.public_key.hex())
    device_client = OwnerClient(
        url, device_signer, device["credentialId"], wallet_id=owner.wallet_id
    )
    assert device_client.list_access()["items"] == []
    with pytest.raises(ValueError, match="secret"):
        device_client.sign_grant({})


def test_the_owner_refuses_to_sign_a_grant_it_did_not_recompute(url: str, waas: Waas) -> None:
    backend, owner = new_backend(url), new_owner(url)
    pending = owner.authorize_remote_access(str(backend.credential_id), None, envelope(waas))
    forged = {**pending, "grantDigest": "0x" + "ab" * 32}
    with pytest.raises(GrantVerificationError):
        owner.sign_grant(forged)
    widened = {
        **pending,
        "grant": {**pending["grant"], "message": dict(pending["grant"]["message"])},
    }
    widened["grant"]["message"]["envelope"] = {
        **widened["grant"]["message"]["envelope"],
        "maxUses": "0",
        "valueLimit": "1",
    }
    with pytest.raises(GrantVerificationError):
        owner.sign_grant(widened)
    assert owner.sign_grant(pending)  # the genuine one is signed


def test_unsigned_calls_and_unknown_credentials_fail_cleanly(url: str) -> None:
    stranger = BackendClient(url, P256RequestSigner(generate_private_key()), "cred_" + "0" * 32)
    with pytest.raises(SessionWardApiError) as raised:
        stranger.list_sessions()
    assert (raised.value.status, raised.value.code) == (401, "CREDENTIAL_UNKNOWN")
    unregistered = BackendClient(url, P256RequestSigner(generate_private_key()))
    with pytest.raises(ValueError, match="register"):
        unregistered.list_sessions()


def test_the_owner_client_registers_an_existing_account_with_its_proof(
    url: str, waas: Waas
) -> None:
    secret = secrets.token_bytes(32)
    owner = OwnerClient(url, secret)
    rt = waas.runtime
    salt = secrets.token_bytes(32)
    account = rt.calls.decode_address(
        rt.chain.call(rt.deployment.factory, rt.calls.get_address(owner.public_key, salt))
    )
    transact(
        rt.chain,
        rt.deployer,
        to=rt.deployment.factory,
        data=rt.calls.create_account(owner.public_key, salt),
    )
    wallet = owner.register_wallet(account)
    assert wallet["account"] == account and owner.wallet_id == wallet["walletId"]


def test_the_owner_client_refuses_a_challenge_whose_digest_does_not_match() -> None:
    challenge = {
        "serviceId": "sessionward",
        "chainId": 1,
        "account": "0x" + "11" * 20,
        "owner": "0x" + "22" * 20,
        "nonce": "5",
        "deadline": 2_000_000_000,
        "digest": "0x" + "00" * 32,
    }
    with pytest.raises(ValueError, match="digest"):
        check_registration_challenge(
            challenge, account=challenge["account"], public_key="0x" + "33" * 20, owner=None
        )
    with pytest.raises(ValueError, match="another account"):
        check_registration_challenge(
            challenge, account="0x" + "44" * 20, public_key="0x" + "33" * 20, owner=None
        )
