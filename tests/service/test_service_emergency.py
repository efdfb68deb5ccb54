"""Ops' kill switch (EmergencyRevoke) for each scope, with its mandatory written reason, and
LiftFreeze, which for a global freeze takes two distinct ops credentials.

Global and action-class freezes stop every session of the module's shared Waas, so each test
that makes one lifts it before it ends (and a fixture checks that none is left behind)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import cast

import pytest
from service_support import Session, World, codes

from sessionward.reasons import ReasonCode
from sessionward.service.errors import ServiceError
from sessionward.service.revocation import EmergencyScope
from sessionward.service.waas import Waas
from sessionward.vault.interface import VaultRefusal


@pytest.fixture(autouse=True)
def no_freeze_left_behind(world: World) -> Iterator[None]:
    yield
    left: list[tuple[EmergencyScope, str | None]] = [
        (f.scope, f.target)
        for f in world.rt.store.freezes.active()
        if f.scope in ("global", "action_class")
    ]
    if left:  # lift them so that one failure does not cascade into the module's other tests
        first, second = world.ops
        for scope, target in left:
            for ops in (first, second):
                with contextlib.suppress(ServiceError):
                    world.waas.revocations.lift_freeze(ops.caller, scope=scope, target=target)
    assert left == [], "a test left a freeze active"


def _lift_global(world: World) -> None:
    first, second = world.ops
    with pytest.raises(ServiceError):
        world.waas.revocations.lift_freeze(first.caller, scope="global", target=None)
    world.waas.revocations.lift_freeze(second.caller, scope="global", target=None)


# --- the mandatory reason and the role -----------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   \t"])
def test_an_emergency_revoke_without_a_written_reason_is_refused_and_changes_nothing(
    world: World, session: Session, reason: str
) -> None:
    since = world.now()
    before = world.snapshot(session.session_id)
    freezes = world.rt.store.freezes.active()
    with pytest.raises(ServiceError) as refused:
        world.waas.revocations.emergency_revoke(
            world.ops[0].caller, scope="session", target=session.session_id, reason=reason
        )
    assert refused.value.code is ReasonCode.REASON_REQUIRED
    world.assert_unchanged(before)
    assert world.rt.store.freezes.active() == freezes
    assert [
        a
        for a in world.rt.store.alerts.between(since, world.now() + 1)
        if a.session_id == session.session_id
    ] == []


@pytest.mark.parametrize("scope", ["session", "wallet", "credential", "action_class", "global"])
def test_only_ops_may_use_the_kill_switch(
    world: World, session: Session, scope: EmergencyScope
) -> None:
    target = {
        "session": session.session_id,
        "wallet": session.wallet.wallet_id,
        "credential": session.backend.credential_id,
        "action_class": "swap.execute",
        "global": None,
    }[scope]
    before = world.snapshot(session.session_id)
    freezes = world.rt.store.freezes.active()
    for caller in (session.backend.caller, session.wallet.caller):
        with pytest.raises(ServiceError) as refused:
            world.waas.revocations.emergency_revoke(
                caller,
                scope=scope,
                target=target,
                reason="I am not ops",
            )
        assert refused.value.code is ReasonCode.ROLE_FORBIDDEN
        with pytest.raises(ServiceError) as lifting:
            world.waas.revocations.lift_freeze(caller, scope=scope, target=target)
        assert lifting.value.code is ReasonCode.ROLE_FORBIDDEN
    world.assert_unchanged(before)
    assert world.rt.store.freezes.active() == freezes


def test_a_malformed_scope_or_target_is_refused(world: World, session: Session) -> None:
    ops = world.ops[0].caller
    cases = [("planet", session.session_id), ("global", session.session_id), ("session", None)]
    for scope, target in cases:
        with pytest.raises(ServiceError) as refused:
            world.waas.revocations.emergency_revoke(
                ops,
                scope=cast(EmergencyScope, scope),
                target=target,
                reason="testing",
            )
        assert refused.value.code is ReasonCode.INPUT_MALFORMED
    assert world.record(session.session_id).status == "active"


# --- each scope --------------------------------------------------------------------------------


def test_ops_revoke_one_session_with_a_reason_and_a_critical_alert(
    world: World, session: Session
) -> None:
    since = world.now()
    ops = world.ops[0]
    result = world.waas.revocations.emergency_revoke(
        ops.caller, scope="session", target=session.session_id, reason="leaked agent logs"
    )
    assert result["revokedSessions"] == [session.session_id]
    record = world.record(session.session_id)
    assert record.status == "revoking"  # revoked once the chain agrees
    assert (record.revoked_by, record.revoke_reason) == (
        f"ops:{ops.credential.id}",
        "leaked agent logs",
    )
    alert = next(
        a
        for a in world.rt.store.alerts.between(since, world.now() + 1)
        if a.rule == "emergency_revoke" and a.session_id == session.session_id
    )
    assert alert.severity == "critical" and alert.action_at is not None
    global_audit = world.rt.store.audit.records("global")
    assert global_audit[-1].kind == "emergency.revoke"
    assert global_audit[-1].payload["reason"] == "leaked agent logs"
    with pytest.raises(VaultRefusal):
        world.rt.vault.sign(record.session_key_id, b"\x22" * 32, now=world.now())
    world.settle()
    assert world.record(session.session_id).onchain_revoked_at is not None


def test_ops_freeze_a_wallet_which_revokes_its_sessions_until_lifted(
    world: World, session: Session
) -> None:
    result = world.waas.revocations.emergency_revoke(
        world.ops[0].caller, scope="wallet", target=session.wallet.wallet_id, reason="stolen phone"
    )
    assert result["revokedSessions"] == [session.session_id]
    assert result["freezeId"] is not None
    wallet = world.rt.store.wallets.get(session.wallet.wallet_id)
    assert wallet is not None and wallet.frozen_at is not None
    # A new session on the frozen wallet is unusable even once approved.
    fresh = world.session(session.wallet, session.backend)
    before = world.snapshot(fresh.session_id)
    with pytest.raises(ServiceError) as refused:
        world.quote(fresh, 1)
    assert refused.value.code is ReasonCode.WALLET_FROZEN
    world.assert_unchanged(
        before, except_txn=world.rt.store.transactions.of_session(fresh.session_id)[0].id
    )

    lifted = world.waas.revocations.lift_freeze(
        world.ops[1].caller, scope="wallet", target=session.wallet.wallet_id
    )
    assert lifted["lifted"] == 1
    assert world.rt.store.wallets.get(session.wallet.wallet_id).frozen_at is None  # type: ignore[union-attr]
    assert world.record(session.session_id).status == "revoked"  # lifting revives nothing
    assert world.swap(fresh, 1)["status"] == "pending"
    world.settle()


def test_ops_revoke_a_credential_and_every_session_bound_to_it(world: World) -> None:
    backend = world.backend()
    sessions = [world.session(None, backend), world.session(None, backend)]
    result = world.waas.revocations.emergency_revoke(
        world.ops[0].caller, scope="credential", target=backend.credential_id, reason="compromised"
    )
    assert result["revokedCredential"] == backend.credential_id
    assert sorted(result["revokedSessions"]) == sorted(s.session_id for s in sessions)
    assert world.rt.store.credentials.get(backend.credential_id).revoked_at is not None  # type: ignore[union-attr]
    with pytest.raises(ServiceError) as unknown:
        world.waas.revocations.emergency_revoke(
            world.ops[0].caller, scope="credential", target="cred_nope", reason="typo"
        )
    assert unknown.value.code is ReasonCode.CREDENTIAL_UNKNOWN


def test_an_action_class_freeze_refuses_a_quote_made_before_it_until_lifted(
    world: World, session: Session
) -> None:
    quote = world.quote(session, 1)
    world.waas.revocations.emergency_revoke(
        world.ops[0].caller, scope="action_class", target="swap.execute", reason="router exploit"
    )
    try:
        before = world.snapshot(session.session_id)
        with pytest.raises(ServiceError) as refused:
            world.execute(session, quote["txnId"])
        assert refused.value.code is ReasonCode.ACTION_CLASS_FROZEN
        assert codes(refused.value) == (ReasonCode.ACTION_CLASS_FROZEN,)
        world.assert_unchanged(before, except_txn=quote["txnId"])
        assert world.record(session.session_id).status == "active"  # frozen, not revoked
    finally:
        lifted = world.waas.revocations.lift_freeze(
            world.ops[0].caller, scope="action_class", target="swap.execute"
        )
    assert lifted["lifted"] == 1
    assert world.swap(session, 1)["status"] == "pending"
    world.settle()


def test_a_global_freeze_refuses_a_quote_made_before_it_and_needs_two_distinct_ops_to_lift(
    world: World, session: Session
) -> None:
    first, second = world.ops
    quote = world.quote(session, 1)
    result = world.waas.revocations.emergency_revoke(
        first.caller, scope="global", target=None, reason="incident 42"
    )
    try:
        assert result["freezeId"] is not None and result["revokedSessions"] == []
        before = world.snapshot(session.session_id)
        with pytest.raises(ServiceError) as refused:
            world.execute(session, quote["txnId"])
        assert refused.value.code is ReasonCode.GLOBAL_FREEZE
        world.assert_unchanged(before, except_txn=quote["txnId"])

        with pytest.raises(ServiceError) as alone:
            world.waas.revocations.lift_freeze(first.caller, scope="global", target=None)
        assert alone.value.code is ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS
        with pytest.raises(ServiceError) as twice:
            world.waas.revocations.lift_freeze(first.caller, scope="global", target=None)
        assert twice.value.code is ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS
        assert [f.scope for f in world.rt.store.freezes.active()].count("global") == 1
        with pytest.raises(ServiceError) as still:
            world.quote(session, 1)
        assert still.value.code is ReasonCode.GLOBAL_FREEZE

        lifted = world.waas.revocations.lift_freeze(second.caller, scope="global", target=None)
        assert lifted == {
            "lifted": 1,
            "approvals": sorted([first.credential.id, second.credential.id]),
        }
    finally:
        if any(f.scope == "global" for f in world.rt.store.freezes.active()):
            _lift_global(world)
    assert world.swap(session, 1)["status"] == "pending"
    world.settle()
    kinds = [r.kind for r in world.rt.store.audit.records("global")]
    assert kinds.count("emergency.lift") >= 1


def test_approvals_to_lift_one_global_freeze_do_not_carry_over_to_the_next(
    world: World, session: Session
) -> None:
    first, second = world.ops
    world.waas.revocations.emergency_revoke(first.caller, scope="global", target=None, reason="one")
    try:
        with pytest.raises(ServiceError):
            world.waas.revocations.lift_freeze(first.caller, scope="global", target=None)
        world.waas.revocations.lift_freeze(second.caller, scope="global", target=None)
        world.waas.revocations.emergency_revoke(
            second.caller, scope="global", target=None, reason="two"
        )
        with pytest.raises(ServiceError) as refused:
            world.waas.revocations.lift_freeze(first.caller, scope="global", target=None)
        assert refused.value.code is ReasonCode.FREEZE_LIFT_NEEDS_SECOND_OPS
        assert any(f.scope == "global" for f in world.rt.store.freezes.active())
    finally:
        if any(f.scope == "global" for f in world.rt.store.freezes.active()):
            world.waas.revocations.lift_freeze(second.caller, scope="global", target=None)
    assert world.record(session.session_id).status == "active"


# --- alerts leave only once committed ------------------------------------------------------------


def test_the_alert_of_an_emergency_revoke_is_sent_only_after_its_unit_commits(
    world: World, session: Session
) -> None:
    sent: list[str] = []
    waas = Waas(world.rt, alert_sink=lambda alert: sent.append(alert.rule))
    ops = world.ops[0]
    with pytest.raises(LookupError), waas.one_transaction(durable=True):
        waas.revocations.emergency_revoke(
            ops.caller, scope="session", target=session.session_id, reason="leaked agent logs"
        )
        assert sent == []  # not before the commit
        raise LookupError("the request failed after the revocation")
    assert sent == []  # the unit rolled back: no alert went out
    assert world.record(session.session_id).status == "active"
    with waas.one_transaction(durable=True):
        waas.revocations.emergency_revoke(
            ops.caller, scope="session", target=session.session_id, reason="leaked agent logs"
        )
        assert sent == []
    assert sent == ["emergency_revoke"]
    assert world.record(session.session_id).status == "revoking"
