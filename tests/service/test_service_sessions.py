"""AuthorizeRemoteAccess and ApproveSession: grant-time refusals create nothing; only the
wallet owner's exact, low-s signature over the grant activates a pending session, once."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from service_support import Backend, Wallet, World, high_s_twin

from sessionward.crypto.secp256k1 import SECP256K1_N, sign_digest
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError

# --- AuthorizeRemoteAccess ------------------------------------------------------------------


def _nothing_created(world: World, wallet: Wallet, before: tuple[int, int, list[str]]) -> None:
    assert (
        world.session_count(),
        world.vault_key_count(),
        world.audit_kinds(wallet.wallet_id),
    ) == (before)


def _counts(world: World, wallet: Wallet) -> tuple[int, int, list[str]]:
    return world.session_count(), world.vault_key_count(), world.audit_kinds(wallet.wallet_id)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        pytest.param({"expiresAt": 7200}, ReasonCode.TTL_EXCEEDS_TIER, id="ttl-over-guarded-tier"),
        pytest.param(
            {"capabilities": ["account.ownership"]},
            ReasonCode.NON_DELEGABLE_ACTION,
            id="forbidden-capability",
        ),
        pytest.param(
            {"capabilities": ["swap.teleport"]}, ReasonCode.UNKNOWN_CAPABILITY, id="unknown"
        ),
        pytest.param({"maxValueUsd": None}, ReasonCode.CAPS_REQUIRED, id="guarded-without-cap"),
        pytest.param({"expiresAt": None}, ReasonCode.EXPIRY_MISSING, id="no-expiry"),
        pytest.param(
            {"allowedDestinations": ["0x" + "00" * 20]},
            ReasonCode.WILDCARD_TARGET,
            id="zero-address-destination",
        ),
    ],
)
def test_authorize_refuses_an_envelope_with_its_grant_time_code_and_creates_nothing(
    world: World, wallet: Wallet, backend: Backend, overrides: dict[str, Any], code: ReasonCode
) -> None:
    if overrides.get("expiresAt") is not None:
        overrides = {**overrides, "expiresAt": world.now() + overrides["expiresAt"]}
    before = _counts(world, wallet)
    with pytest.raises(ServiceError) as refused:
        world.authorize(wallet, backend, **overrides)
    assert refused.value.code is code
    assert refused.value.kind == "invalid"
    _nothing_created(world, wallet, before)


def test_authorize_refuses_a_session_that_would_outlive_its_credential(
    world: World, wallet: Wallet
) -> None:
    short_lived = world.backend(expires_in=600)
    before = _counts(world, wallet)
    with pytest.raises(ServiceError) as refused:
        world.authorize(wallet, short_lived, expiresAt=world.now() + 1200)
    assert refused.value.code is ReasonCode.EXPIRY_PAST_CREDENTIAL
    _nothing_created(world, wallet, before)


def test_authorize_refuses_a_revoked_backend_credential(world: World, wallet: Wallet) -> None:
    retired = world.backend()
    world.waas.revocations.revoke_credential(
        retired.caller, credential_id=retired.credential_id, reason="rotating keys"
    )
    before = _counts(world, wallet)
    with pytest.raises(ServiceError) as refused:
        world.authorize(wallet, retired)
    assert refused.value.code is ReasonCode.CREDENTIAL_REVOKED
    _nothing_created(world, wallet, before)


def test_authorize_is_for_the_wallets_own_owner_only(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    other = world.wallet()
    before = _counts(world, wallet)
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.authorize(
            other.caller,
            credential_id=backend.credential_id,
            wallet_id=wallet.wallet_id,
            envelope=world.envelope(),
        )
    assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
    with pytest.raises(ServiceError) as as_backend:
        world.waas.sessions.authorize(
            backend.caller,
            credential_id=backend.credential_id,
            wallet_id=wallet.wallet_id,
            envelope=world.envelope(),
        )
    assert as_backend.value.code is ReasonCode.ROLE_FORBIDDEN
    _nothing_created(world, wallet, before)


def test_authorize_makes_one_vault_key_and_a_pending_session_bound_to_it(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    keys = world.vault_key_count()
    pending = world.authorize(wallet, backend)
    record = world.record(pending["sessionId"])
    assert world.vault_key_count() == keys + 1
    assert record.status == "pending_approval"
    assert record.session_key_address == pending["sessionKey"]
    assert world.rt.vault.address_of(record.session_key_id) == pending["sessionKey"]
    assert pending["grant"]["primaryType"] == "SessionGrant"
    assert world.audit_kinds(wallet.wallet_id)[-1] == "session.authorized"
    # Nothing is usable before approval.
    session_view = world.waas.sessions.get(backend.caller, pending["sessionId"])
    assert session_view["status"] == "pending" and session_view["approvedAt"] is None


# --- ApproveSession ---------------------------------------------------------------------------


def _assert_still_pending(world: World, wallet: Wallet, session_id: str) -> None:
    record = world.record(session_id)
    assert record.status == "pending_approval"
    assert record.approved_at is None and record.owner_signature is None
    assert world.rt.relayer.job(f"enable:{session_id}") is None
    assert "session.approved" not in world.audit_kinds(wallet.wallet_id)


def _bad_signatures(wallet: Wallet, digest: str) -> dict[str, tuple[bytes, ReasonCode]]:
    good = wallet.sign(digest)
    stranger = secrets.token_bytes(32)
    return {
        "another-owner": (
            sign_digest(stranger, bytes.fromhex(digest[2:])),
            ReasonCode.SIGNER_MISMATCH,
        ),
        "other-digest": (
            sign_digest(wallet.owner_secret, secrets.token_bytes(32)),
            ReasonCode.SIGNER_MISMATCH,
        ),
        "high-s-twin": (high_s_twin(good), ReasonCode.SIGNATURE_MALLEABLE),
        "bad-v": (good[:64] + bytes([29]), ReasonCode.SIGNATURE_INVALID),
        "truncated": (good[:64], ReasonCode.SIGNATURE_INVALID),
        "zero-r": (b"\x00" * 32 + good[32:], ReasonCode.SIGNATURE_INVALID),
    }


@pytest.mark.parametrize(
    "case", ["another-owner", "other-digest", "high-s-twin", "bad-v", "truncated", "zero-r"]
)
def test_approve_refuses_a_signature_that_is_not_the_owners_exact_one(
    world: World, wallet: Wallet, backend: Backend, case: str
) -> None:
    pending = world.authorize(wallet, backend)
    signature, code = _bad_signatures(wallet, pending["grantDigest"])[case]
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.approve(
            wallet.caller, session_id=pending["sessionId"], signature=signature
        )
    assert refused.value.code is code
    assert refused.value.kind == "forbidden"
    _assert_still_pending(world, wallet, pending["sessionId"])
    # The owner's real signature still works afterwards.
    detail = world.waas.sessions.approve(
        wallet.caller,
        session_id=pending["sessionId"],
        signature=wallet.sign(pending["grantDigest"]),
    )
    # Approved: installing until the chain shows it installed (the wire still says pending).
    assert (detail["status"], detail["lifecycle"]) == ("pending", "installing")
    world.settle()
    assert world.record(pending["sessionId"]).status == "active"


def test_the_high_s_twin_is_a_valid_signature_of_the_same_key(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    """The twin is refused for malleability, not because it is garbage: it recovers the owner."""
    pending = world.authorize(wallet, backend)
    good = wallet.sign(pending["grantDigest"])
    twin = high_s_twin(good)
    assert int.from_bytes(twin[32:64], "big") > SECP256K1_N // 2
    assert twin[:32] == good[:32] and twin != good


def test_approving_twice_changes_nothing_the_second_time(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = world.authorize(wallet, backend)
    signature = wallet.sign(pending["grantDigest"])
    world.waas.sessions.approve(wallet.caller, session_id=pending["sessionId"], signature=signature)
    first = world.record(pending["sessionId"])
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.approve(
            wallet.caller, session_id=pending["sessionId"], signature=signature
        )
    assert refused.value.kind == "conflict"
    assert refused.value.code is ReasonCode.SESSION_NOT_PENDING
    assert world.record(pending["sessionId"]) == first
    assert world.audit_kinds(wallet.wallet_id).count("session.approved") == 1
    world.settle()
    assert world.onchain_status(wallet, pending["sessionKey"]) == 1


def test_approving_a_revoked_session_is_refused(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = world.authorize(wallet, backend)
    world.waas.revocations.revoke_access(
        wallet.caller,
        wallet_id=wallet.wallet_id,
        credential_id=backend.credential_id,
        session_id=pending["sessionId"],
    )
    revoked = world.record(pending["sessionId"])
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.approve(
            wallet.caller,
            session_id=pending["sessionId"],
            signature=wallet.sign(pending["grantDigest"]),
        )
    assert refused.value.code is ReasonCode.SESSION_REVOKED
    assert world.record(pending["sessionId"]) == revoked
    assert world.rt.relayer.job(f"enable:{pending['sessionId']}") is None
    assert "session.approved" not in world.audit_kinds(wallet.wallet_id)


def test_approving_after_the_session_expired_is_refused(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = world.authorize(wallet, backend, expiresAt=world.now() + 300)
    world.clock.advance(301)
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.approve(
            wallet.caller,
            session_id=pending["sessionId"],
            signature=wallet.sign(pending["grantDigest"]),
        )
    assert refused.value.code is ReasonCode.SESSION_EXPIRED
    _assert_still_pending(world, wallet, pending["sessionId"])


def test_only_the_wallets_owner_may_approve(world: World, wallet: Wallet, backend: Backend) -> None:
    pending = world.authorize(wallet, backend)
    other = world.wallet()
    for caller in (other.caller, backend.caller):
        with pytest.raises(ServiceError) as refused:
            world.waas.sessions.approve(
                caller,
                session_id=pending["sessionId"],
                signature=wallet.sign(pending["grantDigest"]),
            )
        assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
    _assert_still_pending(world, wallet, pending["sessionId"])


def test_an_unknown_session_cannot_be_approved(world: World, wallet: Wallet) -> None:
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.approve(
            wallet.caller, session_id="ses_" + "0" * 32, signature=b"\x01" * 65
        )
    assert refused.value.code is ReasonCode.SESSION_UNKNOWN
