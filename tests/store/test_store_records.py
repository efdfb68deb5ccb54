"""Wallets, credentials, decision events and alerts: the plain repositories."""

from __future__ import annotations

from typing import Any

import pytest
from store_support import T0, Seeder

from sessionward.store import Store
from sessionward.store.alerts import AlertRecord
from sessionward.store.decisions import DecisionEvent
from sessionward.store.errors import AlreadyExists


def test_wallet_is_found_by_chain_and_account_in_any_case(store: Store) -> None:
    record = store.wallets.add(
        wallet_id="w1",
        chain_id=8453,
        account="0xAbC0000000000000000000000000000000000001",
        owner="0xDEF0000000000000000000000000000000000002",
        owner_kind="erc1271",
        now=T0,
    )
    assert record.account == "0xabc0000000000000000000000000000000000001"
    assert store.wallets.get("w1") == record
    assert store.wallets.find(8453, "0xABC0000000000000000000000000000000000001") == record
    assert store.wallets.find(1, record.account) is None


def test_an_account_is_registered_once_per_chain(store: Store) -> None:
    args = dict(account="0x" + "1" * 40, owner="0x" + "2" * 40, owner_kind="eoa", now=T0)
    store.wallets.add(wallet_id="w1", chain_id=1, **args)  # type: ignore[arg-type]
    with pytest.raises(AlreadyExists):
        store.wallets.add(wallet_id="w2", chain_id=1, **args)  # type: ignore[arg-type]
    store.wallets.add(wallet_id="w3", chain_id=10, **args)  # type: ignore[arg-type]
    assert store.wallets.get("w2") is None


def test_credential_revocation_is_first_wins(store: Store, seed: Seeder) -> None:
    cid = seed.credential(expires_at=T0 + 50)
    record = store.credentials.get(cid)
    assert record is not None and record.is_live(T0 + 49) and not record.is_live(T0 + 50)
    assert store.credentials.revoke(cid, reason="rotated", now=T0 + 1)
    assert not store.credentials.revoke(cid, reason="again", now=T0 + 2)
    revoked = store.credentials.get(cid)
    assert revoked is not None
    assert (revoked.revoked_at, revoked.revoked_reason) == (T0 + 1, "rotated")
    assert not revoked.is_live(T0 + 1)


def test_credentials_are_listed_by_role(store: Store, seed: Seeder) -> None:
    seed.credential("ops", cid="o1", expires_at=None)
    seed.credential("backend", cid="b1")
    seed.credential("ops", cid="o2", expires_at=None)
    assert [c.id for c in store.credentials.with_role("ops")] == ["o1", "o2"]
    with pytest.raises(AlreadyExists):
        seed.credential("ops", cid="o1")


def test_decision_events_round_trip_in_time_order(store: Store) -> None:
    deny = DecisionEvent(
        id="d2",
        at=T0 + 5,
        verdict="deny",
        reasons=("TARGET_NOT_ALLOWED", "VALUE_CAP_EXCEEDED"),
        latency_us=812,
        request_kind="prepare",
        session_id="s1",
        wallet_id="w1",
        credential_id="c1",
        action_class="swap.execute",
        rule="scope.target",
    )
    allow = DecisionEvent(
        id="d1", at=T0, verdict="allow", reasons=(), latency_us=90, request_kind="execute"
    )
    store.decisions.record(deny)
    store.decisions.record(allow)
    assert store.decisions.between(T0, T0 + 6) == [allow, deny]
    assert store.decisions.between(T0 + 1, T0 + 5) == []
    assert store.decisions.of_session("s1") == [deny]


def test_decision_event_with_an_invalid_verdict_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        bad: Any = "maybe"
        store.decisions.record(
            DecisionEvent(id="d", at=T0, verdict=bad, reasons=(), latency_us=1, request_kind="x")
        )
    assert store.decisions.between(0, 2**62) == []


def test_alert_action_is_recorded_once(store: Store) -> None:
    alert = AlertRecord(
        id="a1",
        at=T0,
        rule="denial_burst",
        severity="critical",
        detail={"denials": 12, "window_s": 60},
        session_id="s1",
    )
    store.alerts.record(alert)
    assert store.alerts.get("a1") == alert
    assert store.alerts.mark_action("a1", "revoked session s1", at=T0 + 2)
    assert not store.alerts.mark_action("a1", "something else", at=T0 + 3)
    stored = store.alerts.get("a1")
    assert stored is not None
    assert (stored.action_taken, stored.action_at) == ("revoked session s1", T0 + 2)
    assert [a.id for a in store.alerts.between(T0, T0 + 1)] == ["a1"]
