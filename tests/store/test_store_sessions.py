"""Sessions: lifecycle transitions and revocation (first revoke wins, nothing else changes)."""

from __future__ import annotations

import pytest
from store_support import T0, Seeder

from sessionward.store import Store
from sessionward.store.errors import AlreadyExists


def test_new_session_is_pending_with_exact_uint256_fields(store: Store, seed: Seeder) -> None:
    wallet, credential = seed.wallet(), seed.credential()
    record = store.sessions.add(
        session_id="s-big",
        wallet_id=wallet,
        credential_id=credential,
        session_key_id="vk",
        session_key_address="0xABCDEF0000000000000000000000000000000001",
        envelope="{}",
        grant='{"message":{}}',
        grant_nonce=2**256 - 1,
        epoch=2**128 + 3,
        action_classes=["swap.execute", "erc20.transfer"],
        valid_after=T0,
        expires_at=T0 + 60,
        now=T0,
    )
    assert record.status == "pending_approval" and record.approved_at is None
    assert record.grant_nonce == 2**256 - 1 and record.epoch == 2**128 + 3
    assert record.action_classes == ("swap.execute", "erc20.transfer")
    assert record.session_key_address == "0xabcdef0000000000000000000000000000000001"
    assert store.sessions.get("s-big") == record


def test_session_id_is_unique_and_must_reference_a_wallet(store: Store, seed: Seeder) -> None:
    s = seed.session()
    common = dict(
        credential_id=s.credential_id,
        session_key_id="k",
        session_key_address="0x" + "0" * 40,
        envelope="{}",
        grant="{}",
        grant_nonce=0,
        epoch=0,
        action_classes=["x"],
        valid_after=T0,
        expires_at=T0 + 1,
        now=T0,
    )
    with pytest.raises(AlreadyExists):
        store.sessions.add(session_id=s.session_id, wallet_id=s.wallet_id, **common)  # type: ignore[arg-type]
    with pytest.raises(AlreadyExists):
        store.sessions.add(session_id="s-orphan", wallet_id="no-wallet", **common)  # type: ignore[arg-type]
    assert store.sessions.get("s-orphan") is None


def test_empty_validity_window_is_refused(store: Store, seed: Seeder) -> None:
    with pytest.raises(ValueError):
        seed.session(valid_after=T0 + 10, expires_at=T0 + 10)


def test_approval_installs_only_a_pending_unexpired_session(store: Store, seed: Seeder) -> None:
    s = seed.session(approve=False, expires_at=T0 + 100)
    assert not store.sessions.approve(s.session_id, now=T0 + 100)
    assert store.sessions.approve(s.session_id, now=T0 + 5)
    assert not store.sessions.approve(s.session_id, now=T0 + 6)
    record = store.sessions.get(s.session_id)
    assert record is not None and record.status == "installing" and record.approved_at == T0 + 5
    assert store.sessions.mark_onchain_enabled(s.session_id, now=T0 + 7)
    assert not store.sessions.mark_onchain_enabled(s.session_id, now=T0 + 8)
    record = store.sessions.get(s.session_id)
    assert record is not None and record.status == "active" and record.onchain_enabled_at == T0 + 7


def test_revoked_session_cannot_be_approved_or_resumed(store: Store, seed: Seeder) -> None:
    s = seed.session(approve=False)
    assert store.sessions.revoke_session(s.session_id, by="owner", reason="no", now=T0)
    assert not store.sessions.approve(s.session_id, now=T0)
    assert not store.sessions.renew(s.session_id, renewal_nonce=0)
    record = store.sessions.get(s.session_id)
    assert record is not None and record.status == "revoked" and record.approved_at is None


def test_first_revoke_wins_and_keeps_its_time_and_author(store: Store, seed: Seeder) -> None:
    s = seed.session()
    assert store.sessions.revoke_session(s.session_id, by="owner", reason="lost phone", now=T0 + 1)
    assert not store.sessions.revoke_session(s.session_id, by="ops:o1", reason="x", now=T0 + 2)
    record = store.sessions.get(s.session_id)
    assert record is not None
    assert (record.status, record.revoked_at, record.revoked_by, record.revoke_reason) == (
        "revoking",  # approved once: revoked for good only once the chain agrees
        T0 + 1,
        "owner",
        "lost phone",
    )


def test_revoking_an_unknown_session_reports_false(store: Store) -> None:
    assert not store.sessions.revoke_session("nope", by="owner", reason="x", now=T0)


def test_revoke_sessions_of_credential_reports_only_newly_revoked(
    store: Store, seed: Seeder
) -> None:
    credential = seed.credential()
    a = seed.session(credential_id=credential)
    b = seed.session(credential_id=credential)
    c = seed.session(credential_id=credential, approve=False)
    other = seed.session()
    store.sessions.revoke_session(a.session_id, by="owner", reason="early", now=T0)

    revoked = store.sessions.revoke_sessions_of_credential(
        credential, by="backend", reason="retired", now=T0 + 3
    )

    assert revoked == sorted([b.session_id, c.session_id])
    first = store.sessions.get(a.session_id)
    assert first is not None and first.revoked_at == T0 and first.revoked_by == "owner"
    untouched = store.sessions.get(other.session_id)
    assert untouched is not None and untouched.status == "active"


def test_revoke_sessions_of_wallet(store: Store, seed: Seeder) -> None:
    wallet = seed.wallet()
    a = seed.session(wallet_id=wallet)
    b = seed.session(wallet_id=wallet)
    other = seed.session()
    assert store.sessions.revoke_sessions_of_wallet(
        wallet, by="ops:o1", reason="kill", now=T0
    ) == sorted([a.session_id, b.session_id])
    assert store.sessions.revoke_sessions_of_wallet(wallet, by="x", reason="y", now=T0) == []
    assert [r.status for r in store.sessions.of_wallet(wallet)] == ["revoking", "revoking"]
    record = store.sessions.get(other.session_id)
    assert record is not None and record.status == "active"


def test_onchain_revocation_is_marked_once_and_only_after_revocation(
    store: Store, seed: Seeder
) -> None:
    s = seed.session()
    assert not store.sessions.mark_onchain_revoked(s.session_id, now=T0)
    store.sessions.revoke_session(s.session_id, by="owner", reason="x", now=T0 + 1)
    assert [r.id for r in store.sessions.awaiting_onchain_revocation()] == [s.session_id]
    assert store.sessions.mark_onchain_revoked(s.session_id, now=T0 + 20)
    assert not store.sessions.mark_onchain_revoked(s.session_id, now=T0 + 30)
    record = store.sessions.get(s.session_id)
    assert record is not None and record.onchain_revoked_at == T0 + 20
    assert store.sessions.awaiting_onchain_revocation() == []


def test_lists_by_credential(store: Store, seed: Seeder) -> None:
    credential = seed.credential()
    a = seed.session(credential_id=credential)
    b = seed.session(credential_id=credential)
    seed.session()
    assert [r.id for r in store.sessions.of_credential(credential)] == [a.session_id, b.session_id]
