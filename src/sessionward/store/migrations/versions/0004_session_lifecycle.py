"""The session lifecycle confirmed by the chain (docs/design.md section 8, issue 13).

Statuses become ``pending_approval → installing → active → revoking → revoked`` plus
``suspended`` and ``expired``; existing rows are mapped:

- ``pending`` → ``pending_approval``;
- ``active`` not confirmed installed on chain (``onchain_enabled_at`` NULL) → ``installing``;
- ``revoked`` approved once but whose removal on chain is not confirmed → ``revoking``
  (the reconciler then checks the chain and records ``revoked`` from it).

New column ``renewal_nonce``: the nonce a suspended session's renewal must be signed over
(a fresh owner act; NULL when no renewal is open). New index on ``status`` for the reconciler's
scan of non-final sessions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW_STATUSES = (
    "status IN ('pending_approval', 'installing', 'active', 'suspended', 'revoking', "
    "'revoked', 'expired')"
)
OLD_STATUSES = "status IN ('pending', 'active', 'suspended', 'revoked')"


def _uint256() -> sa.types.TypeEngine[Decimal]:
    return sa.Numeric(78, 0).with_variant(sa.String(78), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_constraint("ck_sessions_status", type_="check")
    op.execute("UPDATE sessions SET status = 'pending_approval' WHERE status = 'pending'")
    op.execute(
        "UPDATE sessions SET status = 'installing' "
        "WHERE status = 'active' AND onchain_enabled_at IS NULL"
    )
    op.execute(
        "UPDATE sessions SET status = 'revoking' WHERE status = 'revoked' "
        "AND approved_at IS NOT NULL AND onchain_revoked_at IS NULL"
    )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("renewal_nonce", _uint256()))
        batch.create_check_constraint("ck_sessions_status", NEW_STATUSES)
    op.create_index("ix_sessions_status", "sessions", ["status"])


def downgrade() -> None:
    op.drop_index("ix_sessions_status", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_constraint("ck_sessions_status", type_="check")
        batch.drop_column("renewal_nonce")
    op.execute("UPDATE sessions SET status = 'pending' WHERE status = 'pending_approval'")
    op.execute("UPDATE sessions SET status = 'active' WHERE status = 'installing'")
    op.execute("UPDATE sessions SET status = 'revoked' WHERE status IN ('revoking', 'expired')")
    with op.batch_alter_table("sessions") as batch:
        batch.create_check_constraint("ck_sessions_status", OLD_STATUSES)
