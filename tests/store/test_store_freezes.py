"""Freezes: scopes, lifting, and the two-distinct-ops rule for a global freeze."""

from __future__ import annotations

import pytest
from store_support import T0, Seeder

from sessionward.reasons import ReasonCode
from sessionward.store import Store
from sessionward.store.freezes import FreezeLiftRefused


def test_wallet_freeze_marks_the_wallet_and_lift_clears_it(store: Store, seed: Seeder) -> None:
    wallet = seed.wallet()
    record = store.freezes.freeze("wallet", wallet, reason="phished", by="ops:o1", now=T0)
    frozen = store.wallets.get(wallet)
    assert frozen is not None and (frozen.frozen_at, frozen.frozen_reason) == (T0, "phished")
    assert [f.id for f in store.freezes.active()] == [record.id]

    assert store.freezes.lift("wallet", wallet, by="ops:o2", now=T0 + 9) == 1

    thawed = store.wallets.get(wallet)
    assert thawed is not None and thawed.frozen_at is None and thawed.frozen_reason is None
    assert store.freezes.active() == []


def test_freeze_needs_a_reason_and_a_valid_scope(store: Store) -> None:
    with pytest.raises(ValueError):
        store.freezes.freeze("wallet", "w", reason="  ", by="ops", now=T0)
    with pytest.raises(ValueError):
        store.freezes.freeze("planet", "earth", reason="x", by="ops", now=T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.freezes.freeze("global", "w", reason="x", by="ops", now=T0)
    with pytest.raises(ValueError):
        store.freezes.freeze("session", None, reason="x", by="ops", now=T0)
    assert store.freezes.active() == []


def test_global_freeze_cannot_be_lifted_by_the_plain_lift(store: Store) -> None:
    store.freezes.freeze("global", None, reason="incident", by="ops:o1", now=T0)
    with pytest.raises(ValueError):
        store.freezes.lift("global", "", by="ops:o1", now=T0)
    assert len(store.freezes.active()) == 1


def test_global_freeze_lift_needs_two_distinct_ops(store: Store, seed: Seeder) -> None:
    o1, o2 = seed.credential("ops", cid="o1"), seed.credential("ops", cid="o2")
    store.freezes.freeze("global", None, reason="incident", by="o1", now=T0)

    with pytest.raises(FreezeLiftRefused) as one:
        store.freezes.lift_global_freeze({o1}, now=T0 + 1)
    assert one.value.code == ReasonCode.INPUT_MALFORMED
    assert len(store.freezes.active()) == 1

    assert store.freezes.lift_global_freeze({o1, o2}, now=T0 + 2) == 1
    assert store.freezes.active() == []


@pytest.mark.parametrize("problem", ["backend", "revoked", "expired", "unknown"])
def test_global_freeze_lift_refuses_an_approval_that_is_not_a_live_ops_credential(
    store: Store, seed: Seeder, problem: str
) -> None:
    o1 = seed.credential("ops", cid="o1")
    if problem == "backend":
        second = seed.credential("backend")
    elif problem == "revoked":
        second = seed.credential("ops")
        store.credentials.revoke(second, reason="left", now=T0)
    elif problem == "expired":
        second = seed.credential("ops", expires_at=T0 + 1)
    else:
        second = "ghost"
    store.freezes.freeze("global", None, reason="incident", by="o1", now=T0)

    with pytest.raises(FreezeLiftRefused) as refused:
        store.freezes.lift_global_freeze({o1, second}, now=T0 + 1)

    assert refused.value.code == ReasonCode.SIGNER_MISMATCH
    [still] = store.freezes.active()
    assert still.lifted_at is None


def test_lift_records_who_lifted(store: Store, seed: Seeder) -> None:
    o1, o2 = seed.credential("ops", cid="o1"), seed.credential("ops", cid="o2")
    store.freezes.freeze("global", None, reason="incident", by="o1", now=T0)
    store.freezes.freeze("session", "s9", reason="odd", by="auto:burst", now=T0)
    store.freezes.lift_global_freeze({o2, o1}, now=T0 + 5)
    [remaining] = store.freezes.active()
    assert remaining.scope == "session" and remaining.target == "s9"
    assert store.freezes.lift("session", "s9", by="o1", now=T0 + 6) == 1
    assert store.freezes.lift("session", "s9", by="o1", now=T0 + 7) == 0
