"""ImportPermissionRequest and ExportPermission: an ERC-7715 request becomes a session pending
the owner's approval (the AuthorizeRemoteAccess path), enforced like any other once approved;
what cannot be enforced is refused with its exact code and nothing is stored; a granted session
is exported as ERC-7715 PermissionResponse objects."""

from __future__ import annotations

from typing import Any

import pytest
from service_support import USDX_UNIT, Backend, Session, Wallet, World

from sessionward.domain.abi import encode_call, parse_signature
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError
from sessionward.service.permission_requests import PermissionRequests, permission_context

TRANSFER = parse_signature("transfer(address,uint256)")
PAYEE = "0x3333333333333333333333333333333333333333"
STRANGER = "0x4444444444444444444444444444444444444444"


def requests(world: World) -> PermissionRequests:
    return PermissionRequests(world.rt, world.waas.sessions, world.waas.directory)


def grant_request(world: World, wallet: Wallet, **overrides: Any) -> list[dict[str, Any]]:
    """10 USDX a day to PAYEE, wallet-managed, for 30 minutes."""
    entry: dict[str, Any] = {
        "chainId": hex(world.rt.chain_id),
        "address": wallet.account,
        "expiry": world.now() + 1800,
        "signer": {"type": "wallet", "data": {}},
        "permission": {
            "type": "erc20-token-periodic",
            "data": {
                "tokenAddress": world.usdx,
                "periodAmount": hex(10 * USDX_UNIT),
                "periodDuration": 86400,
                "justification": "Pay PAYEE up to 10 USDX a day",
            },
        },
        "policies": [{"type": "payee", "data": {"addresses": [PAYEE]}}],
    }
    entry.update(overrides)
    return [entry]


def import_for(world: World, wallet: Wallet, backend: Backend, request: object) -> Any:
    return requests(world).import_request(
        wallet.caller,
        credential_id=backend.credential_id,
        wallet_id=wallet.wallet_id,
        request=request,
    )


def stored(world: World, wallet: Wallet) -> tuple[int, int, list[str]]:
    return world.session_count(), world.vault_key_count(), world.audit_kinds(wallet.wallet_id)


def granted(world: World, wallet: Wallet, backend: Backend) -> Session:
    pending = import_for(world, wallet, backend, grant_request(world, wallet))
    world.approve_pending(wallet, dict(pending))
    world.settle()
    return Session(pending["sessionId"], wallet, backend, pending["sessionKey"])


# --- import ---------------------------------------------------------------------------------


def test_an_imported_request_is_a_session_pending_the_owner_approval(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = import_for(world, wallet, backend, grant_request(world, wallet))
    assert pending["status"] == "pending"
    assert pending["grantDigest"].startswith("0x")
    assert pending["justifications"] == ["Pay PAYEE up to 10 USDX a day"]
    record = world.record(pending["sessionId"])
    assert record.status == "pending_approval"
    assert record.credential_id == backend.credential_id
    assert world.audit_kinds(wallet.wallet_id)[-1] == "session.authorized"
    detail = world.waas.sessions.get(wallet.caller, pending["sessionId"])
    assert detail["envelope"]["tokenLimits"] == [
        {"token": world.usdx, "limit": str(10 * USDX_UNIT), "period": 86400}
    ]


def test_an_approved_import_is_enforced_like_any_session(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    session = granted(world, wallet, backend)
    assert world.record(session.session_id).status == "active"
    quote = world.prepare(
        session, to=world.usdx, data=encode_call(TRANSFER, (PAYEE, 4 * USDX_UNIT))
    )
    world.execute(session, quote["txnId"])
    world.settle()
    assert world.balance(world.usdx, PAYEE) == 4 * USDX_UNIT
    with pytest.raises(ServiceError) as over:
        world.prepare(session, to=world.usdx, data=encode_call(TRANSFER, (PAYEE, 7 * USDX_UNIT)))
    assert over.value.code is ReasonCode.TOKEN_LIMIT_EXCEEDED
    with pytest.raises(ServiceError) as elsewhere:
        world.prepare(session, to=world.usdx, data=encode_call(TRANSFER, (STRANGER, 1)))
    assert elsewhere.value.code is ReasonCode.ARG_RULE_VIOLATED


def test_an_account_signer_is_the_backend_own_address(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    credential = world.rt.store.credentials.get(backend.credential_id)
    assert credential is not None
    signer = {"type": "account", "data": {"address": credential.public_key}}
    pending = import_for(world, wallet, backend, grant_request(world, wallet, signer=signer))
    assert world.record(pending["sessionId"]).status == "pending_approval"


# --- attacks: refused with the exact code, nothing stored -----------------------------------


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        pytest.param(
            {"permission": {"type": "native-token-transfer", "data": {"allowance": "0x1"}}},
            ReasonCode.PERMISSION_UNENFORCEABLE,
            id="plain-native-transfer",
        ),
        pytest.param({"policies": []}, ReasonCode.PERMISSION_UNENFORCEABLE, id="any-recipient"),
        pytest.param(
            {"policies": [{"type": "gas-limit", "data": {"limit": "0x1"}}]},
            ReasonCode.PERMISSION_UNENFORCEABLE,
            id="gas-limit",
        ),
        pytest.param(
            {"permission": {"type": "erc1155-token-transfer", "data": {}}},
            ReasonCode.PERMISSION_TYPE_UNSUPPORTED,
            id="erc1155",
        ),
        pytest.param(
            {"signer": {"type": "keys", "data": {"ids": ["did:key:z1", "did:key:z2"]}}},
            ReasonCode.PERMISSION_UNENFORCEABLE,
            id="dapp-multisig-key",
        ),
        pytest.param(
            {"signer": {"type": "account", "data": {"address": STRANGER}}},
            ReasonCode.SIGNER_MISMATCH,
            id="someone-else-signs",
        ),
        pytest.param({"address": STRANGER}, ReasonCode.ACCOUNT_MISMATCH, id="other-account"),
        pytest.param({"chainId": "another"}, ReasonCode.CHAIN_MISMATCH, id="other-chain"),
        pytest.param({"expiry": 1}, ReasonCode.WINDOW_INVALID, id="expired"),
        pytest.param({"expiry": "two hours"}, ReasonCode.TTL_EXCEEDS_TIER, id="two-hours"),
    ],
)
def test_an_unenforceable_request_is_refused_with_its_code_and_stores_nothing(
    world: World, wallet: Wallet, backend: Backend, overrides: dict[str, Any], code: ReasonCode
) -> None:
    if overrides.get("chainId") == "another":
        overrides = {"chainId": hex(world.rt.chain_id + 1)}
    if overrides.get("expiry") == "two hours":  # past the guarded tier, within the credential
        overrides = {"expiry": world.now() + 7200}
    before = stored(world, wallet)
    with pytest.raises(ServiceError) as refused:
        import_for(world, wallet, backend, grant_request(world, wallet, **overrides))
    assert refused.value.code is code
    assert refused.value.kind == "invalid"
    assert stored(world, wallet) == before


def test_only_the_wallet_owner_imports(world: World, wallet: Wallet, backend: Backend) -> None:
    other = world.wallet(usdx=0, approve_router=False)
    before = stored(world, wallet)
    for caller in (backend.caller, other.caller):
        with pytest.raises(ServiceError) as refused:
            requests(world).import_request(
                caller,
                credential_id=backend.credential_id,
                wallet_id=wallet.wallet_id,
                request=grant_request(world, wallet),
            )
        assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
    assert stored(world, wallet) == before


def test_an_unknown_backend_is_refused_before_the_request_is_read(
    world: World, wallet: Wallet
) -> None:
    with pytest.raises(ServiceError) as refused:
        import_for(world, wallet, Backend("cred_nobody", wallet.caller), "not a request")
    assert refused.value.code is ReasonCode.CREDENTIAL_UNKNOWN


# --- export ---------------------------------------------------------------------------------


def test_a_granted_session_is_exported_as_erc7715_responses(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    session = granted(world, wallet, backend)
    for caller in (backend.caller, wallet.caller):
        exported = requests(world).export(caller, session_id=session.session_id)
        [response] = exported["permissions"]
        assert response["context"] == permission_context(session.session_id)
        assert response["address"] == wallet.account
        assert response["permission"]["type"] == "erc20-token-periodic"
        assert response["permission"]["data"]["periodAmount"] == hex(10 * USDX_UNIT)
        assert response["policies"][0] == {"type": "payee", "data": {"addresses": [PAYEE]}}


def test_a_pending_or_revoked_session_is_not_exported(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = import_for(world, wallet, backend, grant_request(world, wallet))
    with pytest.raises(ServiceError) as refused:
        requests(world).export(backend.caller, session_id=pending["sessionId"])
    assert refused.value.code is ReasonCode.SESSION_PENDING_APPROVAL
    session = granted(world, wallet, backend)
    world.revoke_as_owner(wallet, backend.credential_id, session.session_id)
    with pytest.raises(ServiceError) as revoked:
        requests(world).export(backend.caller, session_id=session.session_id)
    assert revoked.value.code is ReasonCode.SESSION_REVOKED


def test_a_session_without_an_erc7715_form_is_not_exported(world: World, session: Session) -> None:
    with pytest.raises(ServiceError) as refused:
        requests(world).export(session.backend.caller, session_id=session.session_id)
    assert refused.value.code is ReasonCode.PERMISSION_TYPE_UNSUPPORTED


def test_another_backend_cannot_export_a_session(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    session = granted(world, wallet, backend)
    with pytest.raises(ServiceError) as refused:
        requests(world).export(world.backend().caller, session_id=session.session_id)
    assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
