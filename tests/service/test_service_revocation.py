"""Revocation by the owner (RevokeAccess) and by the backend (RevokeCredential): effective
off-chain when the call returns (the vault refuses the key at once), removed on chain by the
dispatcher, which records ``onchainRevokedAt`` once mined."""

from __future__ import annotations

import pytest
from service_support import ONCHAIN_ACTIVE, ONCHAIN_REVOKED, Backend, Session, Wallet, World, codes

from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError
from sessionward.vault.interface import VaultRefusal


def _sign_with_session_key(world: World, session_id: str) -> None:
    record = world.record(session_id)
    world.rt.vault.sign(record.session_key_id, b"\x11" * 32, now=world.now())


def test_the_owner_revokes_one_session_and_the_others_of_the_credential_stay(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    kept = world.session(wallet, backend)
    gone = world.session(wallet, backend)
    result = world.waas.revocations.revoke_access(
        wallet.caller,
        wallet_id=wallet.wallet_id,
        credential_id=backend.credential_id,
        session_id=gone.session_id,
    )
    assert result["revokedSessions"] == [gone.session_id]
    record = world.record(gone.session_id)
    assert record.status == "revoking"  # revoked once the chain agrees
    assert record.revoked_at == result["revokedAt"]
    assert record.revoked_by == f"owner:{wallet.caller.credential_id}"
    assert world.record(kept.session_id).status == "active"
    assert world.swap(kept, 1)["status"] == "pending"
    world.settle()


def test_the_owner_revokes_every_session_of_a_credential_on_the_wallet_only(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    first = world.session(wallet, backend)
    second = world.session(wallet, backend)
    elsewhere = world.session(None, backend)
    other_backend = world.session(wallet, None)
    result = world.waas.revocations.revoke_access(
        wallet.caller,
        wallet_id=wallet.wallet_id,
        credential_id=backend.credential_id,
        session_id=None,
    )
    assert sorted(result["revokedSessions"]) == sorted([first.session_id, second.session_id])
    assert world.record(first.session_id).status == "revoking"
    assert world.record(second.session_id).status == "revoking"
    assert world.record(elsewhere.session_id).status == "active"
    assert world.record(other_backend.session_id).status == "active"
    assert world.rt.store.credentials.get(backend.credential_id).revoked_at is None  # type: ignore[union-attr]


def test_revoking_again_reports_nothing_revoked_and_keeps_the_first_revocation(
    world: World, session: Session
) -> None:
    def revoke() -> list[str]:
        return world.waas.revocations.revoke_access(
            session.wallet.caller,
            wallet_id=session.wallet.wallet_id,
            credential_id=session.backend.credential_id,
            session_id=session.session_id,
        )["revokedSessions"]

    assert revoke() == [session.session_id]
    first = world.record(session.session_id)
    world.clock.advance(5)
    again = {"revokedSessions": revoke()}
    assert again["revokedSessions"] == []
    assert world.record(session.session_id) == first
    assert world.audit_kinds(session.wallet.wallet_id).count("session.revoked") == 1


def test_only_the_wallets_owner_may_revoke_access(world: World, session: Session) -> None:
    stranger = world.wallet()
    before = world.snapshot(session.session_id)
    for caller in (stranger.caller, session.backend.caller, world.ops[0].caller):
        with pytest.raises(ServiceError) as refused:
            world.waas.revocations.revoke_access(
                caller,
                wallet_id=session.wallet.wallet_id,
                credential_id=session.backend.credential_id,
                session_id=session.session_id,
            )
        assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
    world.assert_unchanged(before)


def test_revoking_a_session_that_is_not_the_credentials_on_the_wallet_is_not_found(
    world: World, session: Session
) -> None:
    other = world.backend()
    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.waas.revocations.revoke_access(
            session.wallet.caller,
            wallet_id=session.wallet.wallet_id,
            credential_id=other.credential_id,
            session_id=session.session_id,
        )
    assert refused.value.code is ReasonCode.SESSION_UNKNOWN
    world.assert_unchanged(before)


def test_after_a_revoke_the_vault_refuses_the_key_and_the_chain_removes_the_session(
    world: World, session: Session
) -> None:
    _sign_with_session_key(world, session.session_id)  # usable before
    assert world.onchain_status(session.wallet, session.session_key) == ONCHAIN_ACTIVE
    world.waas.revocations.revoke_access(
        session.wallet.caller,
        wallet_id=session.wallet.wallet_id,
        credential_id=session.backend.credential_id,
        session_id=session.session_id,
    )
    with pytest.raises(VaultRefusal) as refused:
        _sign_with_session_key(world, session.session_id)
    assert refused.value.code is ReasonCode.SIGNING_REFUSED

    # Not yet removed on chain: the dispatcher has not run.
    assert world.record(session.session_id).onchain_revoked_at is None
    assert world.onchain_status(session.wallet, session.session_key) == ONCHAIN_ACTIVE
    assert world.simulate_session_call(session, 1) != "SESSION_REVOKED"

    world.settle()
    job = world.rt.relayer.job(f"revoke:{session.session_id}")
    assert job is not None and job.state == "executed"
    detail = world.waas.sessions.get(session.wallet.caller, session.session_id)
    assert detail["onchainRevokedAt"] is not None
    assert detail["onchainRevokedAt"] >= detail["revokedAt"]  # type: ignore[operator]
    assert world.onchain_status(session.wallet, session.session_key) == ONCHAIN_REVOKED
    assert world.simulate_session_call(session, 1) == "SESSION_REVOKED"
    # Settling again queues nothing more.
    world.settle()
    assert world.record(session.session_id).onchain_revoked_at == detail["onchainRevokedAt"]


def test_a_session_revoked_before_approval_needs_no_removal_on_chain(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = world.authorize(wallet, backend)
    world.waas.revocations.revoke_access(
        wallet.caller,
        wallet_id=wallet.wallet_id,
        credential_id=backend.credential_id,
        session_id=pending["sessionId"],
    )
    world.settle()
    assert world.rt.relayer.job(f"revoke:{pending['sessionId']}") is None
    assert world.onchain_status(wallet, pending["sessionKey"]) == 0


def test_the_backend_retires_its_credential_and_every_session_bound_to_it(
    world: World, backend: Backend
) -> None:
    sessions = [world.session(None, backend), world.session(None, backend)]
    result = world.waas.revocations.revoke_credential(
        backend.caller, credential_id=backend.credential_id, reason="key rotation"
    )
    assert result["revokedCredential"] == backend.credential_id
    assert sorted(result["revokedSessions"]) == sorted(s.session_id for s in sessions)
    credential = world.rt.store.credentials.get(backend.credential_id)
    assert credential is not None and credential.revoked_at is not None
    for s in sessions:
        record = world.record(s.session_id)
        assert (record.status, record.revoked_by) == (
            "revoking",
            f"backend:{backend.credential_id}",
        )
        with pytest.raises(VaultRefusal):
            _sign_with_session_key(world, s.session_id)
    world.settle()
    for s in sessions:
        assert world.record(s.session_id).onchain_revoked_at is not None
        assert world.onchain_status(s.wallet, s.session_key) == ONCHAIN_REVOKED


def test_a_retired_credentials_later_calls_are_refused_and_recorded(
    world: World, session: Session
) -> None:
    quote = world.quote(session, 1)
    world.waas.revocations.revoke_credential(
        session.backend.caller, credential_id=session.backend.credential_id, reason=None
    )
    dead = session.backend.dead()
    before = world.snapshot(session.session_id)

    with pytest.raises(ServiceError) as at_execute:
        world.execute(session, quote["txnId"], caller=dead)
    assert ReasonCode.CREDENTIAL_REVOKED in codes(at_execute.value)
    world.assert_unchanged(before, except_txn=quote["txnId"])

    with pytest.raises(ServiceError) as at_prepare:
        world.quote(session, 1, caller=dead)
    assert ReasonCode.CREDENTIAL_REVOKED in codes(at_prepare.value)

    events = [
        e for e in world.rt.store.decisions.of_session(session.session_id) if e.verdict == "deny"
    ]
    assert {e.request_kind for e in events} == {"prepare", "execute"}
    assert all("CREDENTIAL_REVOKED" in e.reasons for e in events)

    # Every other method refuses the dead credential outright.
    with pytest.raises(ServiceError) as listing:
        world.waas.sessions.list_for_backend(dead, cursor=None, limit=10)
    assert listing.value.code is ReasonCode.CREDENTIAL_REVOKED
    with pytest.raises(ServiceError) as again:
        world.waas.revocations.revoke_credential(
            dead, credential_id=session.backend.credential_id, reason=None
        )
    assert again.value.code is ReasonCode.CREDENTIAL_REVOKED


def test_a_backend_may_only_retire_its_own_credential(world: World, session: Session) -> None:
    intruder = world.backend()
    before = world.snapshot(session.session_id)
    for caller in (intruder.caller, session.wallet.caller):
        with pytest.raises(ServiceError) as refused:
            world.waas.revocations.revoke_credential(
                caller, credential_id=session.backend.credential_id, reason="mine now"
            )
        assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
    world.assert_unchanged(before)
    assert world.rt.store.credentials.get(session.backend.credential_id).revoked_at is None  # type: ignore[union-attr]
