"""Owner devices and one-time pairing codes (issue 14).

``owner_devices``: one row per device credential (a P-256 key the browser made non-extractable,
or a key the owner registered by signing it), bound to its wallet. Expiry and revocation stay on
the credential row (request authentication reads only that); a row here marks the credential as
a *device*, which may not pair or register further devices.

``pairing_codes``: one-time codes an owner's root credential issues; only the SHA-256 of a code
is stored. A code is short-lived and single use (``used_at``/``used_by`` set by the pairing).

Existing data: before this revision any owner credential could register another owner key with
no expiry, and the review page received such keys in its URL (so they sit in browser histories).
Every owner credential that is not its wallet's first (oldest) owner credential is such a device
key: it is recorded here as ``paired_via = 'legacy'`` and revoked, so that the owner pairs the
browser again under the new rules. The wallet's own owner credential is untouched.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LEGACY_REASON = "legacy device key (was handed over in a URL): pair the device again"


def upgrade() -> None:
    op.create_table(
        "owner_devices",
        sa.Column(
            "credential_id", sa.String(80), sa.ForeignKey("credentials.id"), primary_key=True
        ),
        sa.Column("wallet_id", sa.String(80), sa.ForeignKey("wallets.id"), nullable=False),
        sa.Column("label", sa.String(64)),
        sa.Column("paired_via", sa.String(16), nullable=False),
        sa.Column("paired_by", sa.String(80), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_owner_devices_wallet", "owner_devices", ["wallet_id", "credential_id"])
    op.create_table(
        "pairing_codes",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("wallet_id", sa.String(80), sa.ForeignKey("wallets.id"), nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("device_ttl_s", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger),
        sa.Column("used_by", sa.String(80)),
    )
    _retire_legacy_devices()


def _retire_legacy_devices() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, wallet_id, created_at FROM credentials "
            "WHERE role = 'owner' AND wallet_id IS NOT NULL ORDER BY wallet_id, created_at, id"
        )
    ).fetchall()
    now = int(time.time())
    root: dict[str, str] = {}
    for credential_id, wallet_id, created_at in rows:
        if wallet_id not in root:
            root[wallet_id] = credential_id  # the wallet's own (first) owner credential
            continue
        conn.execute(
            sa.text(
                "INSERT INTO owner_devices "
                "(credential_id, wallet_id, label, paired_via, paired_by, created_at) "
                "VALUES (:c, :w, NULL, 'legacy', :r, :t)"
            ),
            {"c": credential_id, "w": wallet_id, "r": root[wallet_id], "t": created_at},
        )
        conn.execute(
            sa.text(
                "UPDATE credentials SET revoked_at = :now, revoked_reason = :why "
                "WHERE id = :c AND revoked_at IS NULL"
            ),
            {"now": now, "why": LEGACY_REASON, "c": credential_id},
        )


def downgrade() -> None:
    op.drop_table("pairing_codes")
    op.drop_index("ix_owner_devices_wallet", table_name="owner_devices")
    op.drop_table("owner_devices")
