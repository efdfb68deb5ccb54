"""The policy path's anomaly rules (docs/design.md section 8, defaults of ``AnomalyRules``): denial
bursts, context mismatches and forbidden-action attempts revoke the session; repeated use after
revocation revokes the credential; fast spending suspends the session. Every rule raises an
alert that records when its action was taken. With the rules switched off nothing is revoked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_support import TRANSFER_OWNERSHIP, Session, World, codes

from sessionward.domain.abi import encode_call, parse_signature
from sessionward.reasons import ReasonCode
from sessionward.service.config import AnomalyRules
from sessionward.service.errors import ServiceError
from sessionward.store.alerts import AlertRecord

TRANSFER = parse_signature("transfer(address,uint256)")
STRANGER = "0x4444444444444444444444444444444444444444"


def _alerts(world: World, session: Session, rule: str) -> list[AlertRecord]:
    return [
        a
        for a in world.rt.store.alerts.between(0, world.now() + 1)
        if a.rule == rule and a.credential_id == session.backend.credential_id
    ]


def _off_target(world: World, session: Session) -> None:
    """A Prepare the envelope denies (TARGET_NOT_ALLOWED), not a mismatch nor forbidden."""
    with pytest.raises(ServiceError) as refused:
        world.prepare(session, to=world.usdx, data=encode_call(TRANSFER, (STRANGER, 1)))
    assert refused.value.code is ReasonCode.TARGET_NOT_ALLOWED


def test_five_denials_within_a_minute_revoke_the_session(world: World, session: Session) -> None:
    for _ in range(4):
        _off_target(world, session)
    assert world.record(session.session_id).status == "active"
    assert _alerts(world, session, "denial_burst") == []
    _off_target(world, session)
    record = world.record(session.session_id)
    assert (record.status, record.revoked_by) == ("revoking", "policy:denial_burst")
    (alert,) = _alerts(world, session, "denial_burst")
    assert alert.severity == "critical"
    assert alert.action_taken == f"revoked session {session.session_id}"
    assert alert.action_at is not None and alert.action_at >= alert.at
    assert alert.session_id == session.session_id
    assert world.audit_kinds(session.wallet.wallet_id)[-1] == "session.revoked"


def test_denials_spread_beyond_the_window_do_not_add_up(world: World, session: Session) -> None:
    for _ in range(4):
        _off_target(world, session)
    world.clock.advance(61)
    for _ in range(4):
        _off_target(world, session)
    assert world.record(session.session_id).status == "active"


def test_a_context_mismatch_revokes_the_session_at_once(world: World, session: Session) -> None:
    with pytest.raises(ServiceError) as refused:
        world.quote(session, 1, chain_id=5)
    assert ReasonCode.CHAIN_MISMATCH in codes(refused.value)
    record = world.record(session.session_id)
    assert (record.status, record.revoked_by) == ("revoking", "policy:context_mismatch")
    (alert,) = _alerts(world, session, "context_mismatch")
    assert alert.action_at is not None and alert.detail["why"] == ["CHAIN_MISMATCH"]
    world.settle()
    assert world.record(session.session_id).onchain_revoked_at is not None


def test_a_forbidden_action_attempt_revokes_the_session_at_once(
    world: World, session: Session
) -> None:
    data = encode_call(TRANSFER_OWNERSHIP, (STRANGER,))
    with pytest.raises(ServiceError) as refused:
        world.prepare(session, to=world.router, data=data)
    assert ReasonCode.NON_DELEGABLE_ACTION in codes(refused.value)
    record = world.record(session.session_id)
    assert (record.status, record.revoked_by) == ("revoking", "policy:forbidden_action_attempt")
    (alert,) = _alerts(world, session, "forbidden_action_attempt")
    assert alert.action_at is not None


def test_three_attempts_after_revocation_within_ten_minutes_revoke_the_credential(
    world: World, session: Session
) -> None:
    world.waas.revocations.revoke_access(
        session.wallet.caller,
        wallet_id=session.wallet.wallet_id,
        credential_id=session.backend.credential_id,
        session_id=session.session_id,
    )
    other = world.session(None, session.backend)  # another session of the same credential
    for attempt in (1, 2):
        with pytest.raises(ServiceError) as refused:
            world.quote(session, 1)
        assert refused.value.code is ReasonCode.SESSION_REVOKED
        assert world.rt.store.credentials.get(session.backend.credential_id).revoked_at is None  # type: ignore[union-attr]
        assert len(_alerts(world, session, "post_revocation_attempt")) == attempt
    with pytest.raises(ServiceError):
        world.quote(session, 1)
    credential = world.rt.store.credentials.get(session.backend.credential_id)
    assert credential is not None and credential.revoked_at is not None
    assert world.record(other.session_id).revoked_by == "policy:post_revocation_attempts"
    (alert,) = _alerts(world, session, "post_revocation_burst")
    assert alert.severity == "critical" and alert.action_at is not None
    assert alert.detail["sessions"] == [other.session_id]


def test_attempts_with_a_credential_the_rule_revoked_warn_but_revoke_nothing_again(
    world: World, session: Session
) -> None:
    world.waas.revocations.revoke_access(
        session.wallet.caller,
        wallet_id=session.wallet.wallet_id,
        credential_id=session.backend.credential_id,
        session_id=session.session_id,
    )
    for _ in range(3):  # the third revokes the credential
        with pytest.raises(ServiceError):
            world.quote(session, 1)
    credential_audit = len(world.audit_kinds("global"))
    for _ in range(3):
        with pytest.raises(ServiceError):
            world.quote(session, 1, caller=session.backend.dead())
    assert len(_alerts(world, session, "post_revocation_attempt")) == 6
    assert len(_alerts(world, session, "post_revocation_burst")) == 1
    assert len(world.audit_kinds("global")) == credential_audit  # no second credential.revoked


def test_spending_half_the_usd_budget_within_five_minutes_suspends_the_session(
    world: World,
) -> None:
    session = world.session(maxValueUsd=100)
    world.swap(session, 30)
    world.settle()
    assert world.record(session.session_id).status == "active"
    world.swap(session, 20)  # 50 of 100 USD within the window
    assert world.record(session.session_id).status == "suspended"
    (alert,) = _alerts(world, session, "value_velocity")
    assert alert.action_taken == f"suspended session {session.session_id}"
    assert alert.action_at is not None

    before = world.snapshot(session.session_id)
    with pytest.raises(ServiceError) as refused:
        world.quote(session, 1)
    assert refused.value.code is ReasonCode.SESSION_SUSPENDED
    world.assert_unchanged(
        before,
        except_txn=next(
            t.id
            for t in world.rt.store.transactions.of_session(session.session_id)
            if t.status == "denied"
        ),
    )
    world.settle()  # the two calls signed before the suspension are still relayed
    statuses = {t.status for t in world.rt.store.transactions.of_session(session.session_id)}
    assert "pending" not in statuses


def test_spending_slowly_does_not_suspend(world: World) -> None:
    session = world.session(maxValueUsd=100)
    world.swap(session, 30)
    world.settle()
    world.clock.advance(301)
    world.swap(session, 30)
    assert world.record(session.session_id).status == "active"
    world.settle()


# --- rules switched off --------------------------------------------------------------------------


@pytest.fixture
def quiet_world(tmp_path: Path) -> Iterator[World]:
    built = World.build(
        tmp_path,
        anomaly=AnomalyRules(
            denial_burst_count=0,
            revoke_on_context_mismatch=False,
            revoke_on_forbidden_attempt=False,
            post_revocation_attempts=0,
            velocity_fraction=0,
        ),
    )
    yield built
    built.close()


def test_with_the_rules_switched_off_nothing_is_revoked_or_suspended(quiet_world: World) -> None:
    world = quiet_world
    session = world.session(maxValueUsd=100)
    for _ in range(6):
        _off_target(world, session)
    with pytest.raises(ServiceError):
        world.quote(session, 1, chain_id=5)
    with pytest.raises(ServiceError):
        world.prepare(session, to=world.router, data=encode_call(TRANSFER_OWNERSHIP, (STRANGER,)))
    world.swap(session, 60)
    assert world.record(session.session_id).status == "active"

    world.waas.revocations.revoke_access(
        session.wallet.caller,
        wallet_id=session.wallet.wallet_id,
        credential_id=session.backend.credential_id,
        session_id=session.session_id,
    )
    for _ in range(4):
        with pytest.raises(ServiceError):
            world.quote(session, 1)
    assert world.rt.store.credentials.get(session.backend.credential_id).revoked_at is None  # type: ignore[union-attr]
    rules = {a.rule for a in world.rt.store.alerts.between(0, world.now() + 1)}
    assert rules.isdisjoint(
        {
            "denial_burst",
            "context_mismatch",
            "forbidden_action_attempt",
            "value_velocity",
            "post_revocation_burst",
        }
    )
    world.settle()


def test_the_owner_renews_a_suspended_session_with_a_fresh_renewal_signature(
    world: World,
) -> None:
    """After the velocity rule suspends a session, only the owner's new signature over its
    SessionRenewal resumes it: not a stranger's, not the original grant signature (issue 13.5;
    more in test_service_lifecycle_renewal)."""
    session = world.session()
    record = world.record(session.session_id)
    assert world.waas.runtime.store.sessions.suspend(session.session_id)
    digest = json.loads(record.grant)["digest"]
    renewal = world.waas.sessions.get(session.wallet.caller, session.session_id)["renewal"]
    stranger = world.wallet()
    for signature in (stranger.sign(renewal["digest"]), session.wallet.sign(digest)):
        with pytest.raises(ServiceError):
            world.waas.sessions.approve(
                session.wallet.caller, session_id=session.session_id, signature=signature
            )
    assert world.record(session.session_id).status == "suspended"
    detail = world.waas.sessions.approve(
        session.wallet.caller,
        session_id=session.session_id,
        signature=session.wallet.sign(renewal["digest"]),
    )
    assert detail["status"] == "active"
