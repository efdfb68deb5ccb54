"""Migration 0006 (owner devices): device keys registered under the old rules (no expiry, the
private key handed to the review page in its URL) are recorded as legacy devices and revoked;
each wallet's own owner credential and backends are untouched."""

from __future__ import annotations

from sqlalchemy import select, text
from store_support import insert_old_wallet

from sessionward.store import Store
from sessionward.store.schema import credentials, owner_devices


def test_upgrade_retires_device_keys_of_the_old_rules(unmigrated_store: Store) -> None:
    unmigrated_store.upgrade("0005")
    with unmigrated_store.db.writing() as conn:
        insert_old_wallet(conn)
        for cid, role, wallet, at in (
            ("cred_root", "owner", "wal_1", 100),
            ("cred_dev", "owner", "wal_1", 200),
            ("cred_backend", "backend", None, 150),
        ):
            conn.execute(
                text(
                    "INSERT INTO credentials (id, role, alg, public_key, wallet_id, created_at)"
                    " VALUES (:c, :r, 'ecdsa-p256-sha256', '0x04', :w, :t)"
                ),
                {"c": cid, "r": role, "w": wallet, "t": at},
            )
    unmigrated_store.upgrade()
    with unmigrated_store.db.reading() as conn:
        rows = conn.execute(select(credentials.c.id, credentials.c.revoked_at))
        revoked = {str(row[0]): row[1] for row in rows}
        devices = conn.execute(
            select(owner_devices.c.credential_id, owner_devices.c.paired_via)
        ).all()
    assert revoked["cred_root"] is None and revoked["cred_backend"] is None
    assert revoked["cred_dev"] is not None
    assert [tuple(d) for d in devices] == [("cred_dev", "legacy")]
    unmigrated_store.downgrade("0005")
    unmigrated_store.upgrade()
