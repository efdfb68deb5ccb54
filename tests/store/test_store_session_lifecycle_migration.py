"""Migration 0004 (the session lifecycle confirmed by the chain): rows of the old statuses are
mapped so that nothing is believed that the chain has not shown: ``active`` never seen installed
becomes ``installing``, ``revoked`` whose removal was never confirmed becomes ``revoking``; and
back down again."""

from __future__ import annotations

from sqlalchemy import text
from store_support import insert_old_wallet

from sessionward.store import Store

# id, old status, approved_at, onchain_enabled_at, revoked_at, onchain_revoked_at -> new status
ROWS = (
    ("s_pending", "pending", None, None, None, None, "pending_approval"),
    ("s_unconfirmed", "active", 110, None, None, None, "installing"),
    ("s_live", "active", 110, 120, None, None, "active"),
    ("s_suspended", "suspended", 110, 120, None, None, "suspended"),
    ("s_never_approved", "revoked", None, None, 130, None, "revoked"),
    ("s_removal_unconfirmed", "revoked", 110, 120, 130, None, "revoking"),
    ("s_removed", "revoked", 110, 120, 130, 140, "revoked"),
)


def _statuses(unmigrated_store: Store) -> dict[str, str]:
    with unmigrated_store.db.reading() as conn:
        return {str(r[0]): str(r[1]) for r in conn.execute(text("SELECT id, status FROM sessions"))}


def test_old_statuses_map_to_the_lifecycle_and_back(unmigrated_store: Store) -> None:
    unmigrated_store.upgrade("0003")
    with unmigrated_store.db.writing() as conn:
        insert_old_wallet(conn)
        conn.execute(
            text(
                "INSERT INTO credentials (id, role, alg, public_key, created_at)"
                " VALUES ('cred_1', 'backend', 'ecdsa-secp256k1', '0x04', 100)"
            )
        )
        for n, (sid, status, approved, enabled, revoked, removed, _) in enumerate(ROWS):
            conn.execute(
                text(
                    "INSERT INTO sessions (id, wallet_id, credential_id, session_key_id,"
                    ' session_key_address, envelope, "grant", grant_nonce, epoch,'
                    " action_classes, status, created_at, approved_at, valid_after, expires_at,"
                    " revoked_at, onchain_revoked_at, onchain_enabled_at) VALUES (:id, 'wal_1',"
                    " 'cred_1', :key, :address, '{}', '{}', :n, 0, 'swap.execute', :status, 100,"
                    " :approved, 100, 10000, :revoked, :removed, :enabled)"
                ),
                {
                    "id": sid,
                    "key": f"vk_{n}",
                    "address": "0x" + f"{n:040x}",
                    "n": n,
                    "status": status,
                    "approved": approved,
                    "revoked": revoked,
                    "removed": removed,
                    "enabled": enabled,
                },
            )
    unmigrated_store.upgrade("0004")
    assert _statuses(unmigrated_store) == {row[0]: row[-1] for row in ROWS}
    record = unmigrated_store.sessions.get("s_unconfirmed")
    assert record is not None and record.renewal_nonce is None
    unmigrated_store.downgrade("0003")
    old = {row[0]: row[1] for row in ROWS}
    assert _statuses(unmigrated_store) == old
    unmigrated_store.upgrade()
