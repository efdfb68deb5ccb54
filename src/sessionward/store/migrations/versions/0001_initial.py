"""Initial schema: wallets, credentials, sessions, usage, reservations, nonces, decision events,
alerts, freezes, the audit log and the vault's key records.

Self-contained on purpose (no import of the application's types): a migration must keep
producing the same schema however the code evolves. Unsigned 256-bit amounts are
``NUMERIC(78,0)`` on PostgreSQL and decimal text on SQLite.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(80)


def _uint256() -> sa.types.TypeEngine[Decimal]:
    return sa.Numeric(78, 0).with_variant(sa.String(78), "sqlite")


def upgrade() -> None:
    op.create_table(
        "wallets",
        sa.Column("id", ID, primary_key=True),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("owner", sa.String(42), nullable=False),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("frozen_at", sa.BigInteger),
        sa.Column("frozen_reason", sa.Text),
        sa.UniqueConstraint("chain_id", "account", name="uq_wallets_chain_account"),
        sa.CheckConstraint("owner_kind IN ('eoa', 'erc1271')", name="ck_wallets_owner_kind"),
    )
    op.create_table(
        "credentials",
        sa.Column("id", ID, primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("alg", sa.String(32), nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("app_name", sa.Text),
        sa.Column("app_url", sa.Text),
        sa.Column("wallet_id", ID, sa.ForeignKey("wallets.id")),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("revoked_at", sa.BigInteger),
        sa.Column("revoked_reason", sa.Text),
        sa.CheckConstraint("role IN ('backend', 'owner', 'ops')", name="ck_credentials_role"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("wallet_id", ID, sa.ForeignKey("wallets.id"), nullable=False),
        sa.Column("credential_id", ID, sa.ForeignKey("credentials.id"), nullable=False),
        sa.Column("session_key_id", ID, nullable=False),
        sa.Column("session_key_address", sa.String(42), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("grant", sa.Text, nullable=False),
        sa.Column("grant_nonce", _uint256(), nullable=False),
        sa.Column("epoch", _uint256(), nullable=False),
        sa.Column("action_classes", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("approved_at", sa.BigInteger),
        sa.Column("valid_after", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
        sa.Column("revoked_by", sa.Text),
        sa.Column("revoke_reason", sa.Text),
        sa.Column("onchain_revoked_at", sa.BigInteger),
        sa.Column("last_used_at", sa.BigInteger),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'suspended', 'revoked')", name="ck_sessions_status"
        ),
    )
    op.create_index("ix_sessions_wallet_id", "sessions", ["wallet_id"])
    op.create_index("ix_sessions_credential_id", "sessions", ["credential_id"])
    op.create_table(
        "usage",
        sa.Column("session_id", ID, sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("bucket", sa.String(80), nullable=False),
        sa.Column("window", sa.BigInteger, nullable=False, quote=True),
        sa.Column("amount", _uint256(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "bucket", name="pk_usage"),
    )
    op.create_table(
        "reservations",
        sa.Column("id", ID, primary_key=True),
        sa.Column("session_id", ID, sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("charges", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("settled_at", sa.BigInteger),
        sa.Column("released_at", sa.BigInteger),
        sa.CheckConstraint(
            "status IN ('held', 'settled', 'released')", name="ck_reservations_status"
        ),
    )
    op.create_index("ix_reservations_session_id", "reservations", ["session_id"])
    op.create_table(
        "nonces",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("nonce", sa.String(78), nullable=False),
        sa.Column("expires_at", sa.BigInteger),
        sa.PrimaryKeyConstraint("scope", "key", "nonce", name="pk_nonces"),
    )
    op.create_index("ix_nonces_expires_at", "nonces", ["expires_at"])
    op.create_table(
        "decision_events",
        sa.Column("id", ID, primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("session_id", ID),
        sa.Column("wallet_id", ID),
        sa.Column("credential_id", ID),
        sa.Column("action_class", sa.String(80)),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("rule", sa.Text),
        sa.Column("latency_us", sa.BigInteger, nullable=False),
        sa.Column("request_kind", sa.String(32), nullable=False),
        sa.CheckConstraint("verdict IN ('allow', 'deny')", name="ck_decision_events_verdict"),
    )
    op.create_index("ix_decision_events_at", "decision_events", ["at"])
    op.create_index("ix_decision_events_session_id", "decision_events", ["session_id"])
    op.create_table(
        "alerts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("rule", sa.String(80), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("session_id", ID),
        sa.Column("wallet_id", ID),
        sa.Column("credential_id", ID),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("action_taken", sa.Text),
        sa.Column("action_at", sa.BigInteger),
    )
    op.create_index("ix_alerts_at", "alerts", ["at"])
    op.create_table(
        "freezes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(80)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("lifted_at", sa.BigInteger),
        sa.Column("lifted_by", sa.Text),
        sa.CheckConstraint(
            "scope IN ('global', 'wallet', 'credential', 'session', 'action_class')",
            name="ck_freezes_scope",
        ),
    )
    op.create_index("ix_freezes_scope_target", "freezes", ["scope", "target"])
    op.create_table(
        "audit",
        sa.Column("stream", sa.String(80), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("stream", "seq", name="pk_audit"),
    )
    op.create_table(
        "vault_keys",
        sa.Column("key_id", ID, primary_key=True),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("wrapped_data_key", sa.LargeBinary, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("nonces", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("not_after", sa.BigInteger),
        sa.Column("disabled_at", sa.BigInteger),
        sa.Column("destroyed_at", sa.BigInteger),
    )


def downgrade() -> None:
    for table in (
        "vault_keys",
        "audit",
        "freezes",
        "alerts",
        "decision_events",
        "nonces",
        "reservations",
        "usage",
        "sessions",
        "credentials",
        "wallets",
    ):
        op.drop_table(table)
