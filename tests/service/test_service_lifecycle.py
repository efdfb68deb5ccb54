"""The session lifecycle confirmed by the chain (issue 13.1, 13.5 and the second half of 14.3),
on embedded defaults (SQLite, the in-process chain).

Every test ends with the database and the chain agreeing on the session (the account's
``session(key)`` view against the session's status) and the audit chain verifying.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from service_support import ONCHAIN_ACTIVE, ONCHAIN_REVOKED, Backend, Session, Wallet, World

from sessionward.chain.errors import ChainUnavailable
from sessionward.chain.relay_jobs import JobState
from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError

NEVER_INSTALLED = 0


# --- approve / revoke ----------------------------------------------------------------------


def test_approval_writes_installing_its_audit_record_and_its_install_job_together(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = world.authorize(wallet, backend)
    detail = world.approve_pending(wallet, pending)
    session_id = pending["sessionId"]
    assert (detail["status"], detail["lifecycle"]) == ("pending", "installing")
    job = world.rt.relayer.job(f"enable:{session_id}")
    assert job is not None and job.state is JobState.QUEUED
    assert world.audit_kinds(wallet.wallet_id)[-1] == "session.approved"
    # Not usable before the chain shows it installed.
    assert world.onchain_status(wallet, pending["sessionKey"]) == NEVER_INSTALLED
    world.settle()
    assert world.assert_agrees(wallet, session_id) == "active"


def test_a_revoke_before_the_install_is_sent_cancels_it_and_nothing_reaches_the_chain(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    """The race of issue 13.1: the revoke lands between the approval and the install. The
    queued install is cancelled in the revoke's own transaction; the grant never leaves."""
    pending = world.authorize(wallet, backend)
    world.approve_pending(wallet, pending)
    session_id = pending["sessionId"]
    world.revoke_as_owner(wallet, backend.credential_id, session_id)
    job = world.rt.relayer.job(f"enable:{session_id}")
    assert job is not None and job.state is JobState.REFUSED and not job.tx_hashes
    assert world.record(session_id).status == "revoking"
    world.settle()
    assert world.assert_agrees(wallet, session_id) == "revoked"
    assert world.onchain_status(wallet, pending["sessionKey"]) == NEVER_INSTALLED
    assert "session.removed.onchain" in world.audit_kinds(wallet.wallet_id)


def test_a_revoke_while_the_install_is_in_flight_removes_it_after_the_install(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    pending = world.authorize(wallet, backend)
    world.approve_pending(wallet, pending)
    session_id = pending["sessionId"]
    world.rt.relayer.submit()  # the install is signed and sent, not yet settled
    job = world.rt.relayer.job(f"enable:{session_id}")
    assert job is not None and job.state is JobState.SUBMITTED
    world.revoke_as_owner(wallet, backend.credential_id, session_id)
    removal = world.rt.relayer.job(f"revoke:{session_id}")
    assert removal is not None  # queued in the revoke's transaction, behind the install
    world.settle()
    assert world.assert_agrees(wallet, session_id) == "revoked"
    assert world.onchain_status(wallet, pending["sessionKey"]) == ONCHAIN_REVOKED


def test_a_revoke_of_an_installed_session_is_revoked_only_once_the_chain_shows_it_removed(
    world: World, session: Session
) -> None:
    world.revoke_as_owner(session.wallet, session.backend.credential_id, session.session_id)
    record = world.record(session.session_id)
    assert record.status == "revoking" and record.onchain_revoked_at is None
    assert world.onchain_status(session.wallet, session.session_key) == ONCHAIN_ACTIVE
    world.settle()
    assert world.assert_agrees(session.wallet, session.session_id) == "revoked"


def test_approval_during_a_chain_outage_answers_unavailable_and_writes_nothing(
    world: World, wallet: Wallet, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending = world.authorize(wallet, backend)
    session_id = pending["sessionId"]
    before = world.record(session_id)
    audit_before = world.audit_kinds(wallet.wallet_id)

    def down(*_args: object, **_kwargs: object) -> Any:
        raise ChainUnavailable("connection refused")

    with monkeypatch.context() as outage:
        outage.setattr(world.chain, "call", down)
        outage.setattr(world.chain, "get_code", down)
        with pytest.raises(ServiceError) as refused:
            world.approve_pending(wallet, pending)
    assert (refused.value.kind, refused.value.code) == ("unavailable", ReasonCode.CHAIN_UNAVAILABLE)
    assert world.record(session_id) == before
    assert world.rt.relayer.job(f"enable:{session_id}") is None
    assert world.audit_kinds(wallet.wallet_id) == audit_before
    # The chain is back: the same approval goes through, once.
    world.approve_pending(wallet, pending)
    world.settle()
    assert world.assert_agrees(wallet, session_id) == "active"


# --- renewal (13.5) --------------------------------------------------------------------------


def test_renewal_refuses_the_original_grant_signature_and_changes_nothing(
    world: World, session: Session
) -> None:
    store = world.rt.store
    assert store.sessions.suspend(session.session_id)
    before = world.record(session.session_id)
    audit_before = world.audit_kinds(session.wallet.wallet_id)
    grant_signature = bytes.fromhex(before.owner_signature or "")
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.approve(
            session.wallet.caller, session_id=session.session_id, signature=grant_signature
        )
    assert (refused.value.kind, refused.value.code) == ("forbidden", ReasonCode.NONCE_REPLAYED)
    assert world.record(session.session_id) == before
    assert world.audit_kinds(session.wallet.wallet_id) == audit_before
    assert world.assert_agrees(session.wallet, session.session_id) == "suspended"


def test_a_fresh_renewal_signature_renews_once_and_never_again(
    world: World, session: Session
) -> None:
    store = world.rt.store
    owner = session.wallet
    assert store.sessions.suspend(session.session_id)
    renewal = world.waas.sessions.get(owner.caller, session.session_id)["renewal"]
    assert renewal["typedData"]["primaryType"] == "SessionRenewal"
    first = owner.sign(renewal["digest"])
    detail = world.waas.sessions.approve(
        owner.caller, session_id=session.session_id, signature=first
    )
    assert detail["status"] == "active" and "renewal" not in detail
    assert world.audit_kinds(owner.wallet_id)[-1] == "session.renewed"
    # Suspended again: the earlier renewal signature is for another nonce.
    assert store.sessions.suspend(session.session_id)
    before = world.record(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.waas.sessions.approve(owner.caller, session_id=session.session_id, signature=first)
    assert refused.value.code is ReasonCode.SIGNER_MISMATCH
    assert world.record(session.session_id) == before
    second = world.waas.sessions.get(owner.caller, session.session_id)["renewal"]
    assert second["digest"] != renewal["digest"]
    world.waas.sessions.approve(
        owner.caller, session_id=session.session_id, signature=owner.sign(second["digest"])
    )
    assert world.assert_agrees(owner, session.session_id) == "active"


# --- global freeze (14.3) ---------------------------------------------------------------------


def _lift_global(world: World) -> None:
    for ops in world.ops:
        try:
            world.waas.revocations.lift_freeze(ops.caller, scope="global", target=None)
        except ServiceError as waiting:
            assert waiting.code is ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS
    assert not any(f.scope == "global" for f in world.rt.store.freezes.active())


def test_a_global_freeze_refuses_new_authority_and_holds_installs_while_revocation_works(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    live = world.session(wallet, backend)
    queued = world.authorize(wallet, backend)
    world.approve_pending(wallet, queued)  # approved before the freeze: its install is queued
    unapproved = world.authorize(wallet, backend)
    ops = world.ops[0]
    world.waas.revocations.emergency_revoke(
        ops.caller, scope="global", target=None, reason="incident drill"
    )
    try:
        before = world.session_count(), world.vault_key_count()
        with pytest.raises(ServiceError) as refused:
            world.authorize(wallet, backend)
        assert refused.value.code is ReasonCode.GLOBAL_FREEZE
        assert (world.session_count(), world.vault_key_count()) == before
        pending_before = world.record(unapproved["sessionId"])
        with pytest.raises(ServiceError) as refused:
            world.approve_pending(wallet, unapproved)
        assert refused.value.code is ReasonCode.GLOBAL_FREEZE
        assert world.record(unapproved["sessionId"]) == pending_before
        assert world.rt.relayer.job(f"enable:{unapproved['sessionId']}") is None
        # The install queued before the freeze is held: nothing reaches the chain.
        world.settle()
        held = world.rt.relayer.job(f"enable:{queued['sessionId']}")
        assert held is not None and held.state is JobState.REFUSED
        assert held.error == ReasonCode.GLOBAL_FREEZE.value and not held.tx_hashes
        assert world.onchain_status(wallet, queued["sessionKey"]) == NEVER_INSTALLED
        assert world.record(queued["sessionId"]).status == "installing"
        # The owner's revocation still works, on chain too.
        world.revoke_as_owner(wallet, backend.credential_id, live.session_id)
        world.settle()
        assert world.assert_agrees(wallet, live.session_id) == "revoked"
    finally:
        _lift_global(world)
    # Lifted: the held install goes out again (a new attempt) and the session becomes active.
    world.settle()
    assert world.rt.relayer.job(f"enable:{queued['sessionId']}#2") is not None
    assert world.assert_agrees(wallet, queued["sessionId"]) == "active"
    world.approve_pending(wallet, unapproved)
    world.settle()
    assert world.assert_agrees(wallet, unapproved["sessionId"]) == "active"


def test_the_grant_signature_is_stored_for_the_install_only(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    """The install job carries the owner's grant signature (the enable call is public by
    design); the renewal message is a different digest, so it can never be replayed there."""
    pending = world.authorize(wallet, backend)
    world.approve_pending(wallet, pending)
    record = world.record(pending["sessionId"])
    job = world.rt.relayer.job(f"enable:{pending['sessionId']}")
    assert job is not None and bytes.fromhex(record.owner_signature or "") in job.data
    assert json.loads(record.grant)["digest"] == pending["grantDigest"]
    world.settle()
    assert world.assert_agrees(wallet, pending["sessionId"]) == "active"


def test_a_session_past_its_expiry_is_recorded_expired_and_its_queued_install_dropped(
    world: World, wallet: Wallet, backend: Backend
) -> None:
    live = world.session(wallet, backend, expiresAt=world.now() + 120)
    queued = world.authorize(wallet, backend, expiresAt=world.now() + 120)
    world.approve_pending(wallet, queued)
    world.clock.advance(121)
    world.waas.dispatcher.reconciler.run(everything=True)
    for session_id in (live.session_id, queued["sessionId"]):
        record = world.record(session_id)
        assert record.status == "expired"
        detail = world.waas.sessions.get(wallet.caller, session_id)
        assert (detail["status"], detail["lifecycle"]) == ("expired", "expired")
    dropped = world.rt.relayer.job(f"enable:{queued['sessionId']}")
    assert dropped is not None and dropped.state is JobState.REFUSED and not dropped.tx_hashes
    world.settle()
    # The chain agrees: the installed one is past the window its state word carries (the
    # account refuses its calls from then on), the other never came.
    assert world.onchain_status(wallet, queued["sessionKey"]) == NEVER_INSTALLED
    assert world.onchain_status(wallet, live.session_key) == ONCHAIN_ACTIVE
    assert world.record(live.session_id).expires_at <= world.now()
    assert world.rt.store.audit.verify(wallet.wallet_id).ok
