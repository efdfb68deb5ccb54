"""Tenant isolation (issue 14): indexes for keyset pages and the wallet-creation budget.

- ``ix_sessions_wallet_page`` ``(wallet_id, id)`` and ``ix_sessions_credential_page``
  ``(credential_id, id)``: a page of a wallet's (ListAccess) or a credential's (ListSessions)
  sessions is one index range scan in id order after the cursor, whatever the number of
  sessions (the single-column indexes needed a sort of every session of the wallet).
- ``ix_wallets_owner_created`` ``(owner, created_at)``: counting the wallets an owner created
  in the last day (the relayer pays each deployment) reads only those rows.

Existing data: indexes only, nothing rewritten.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sessions_wallet_page", "sessions", ["wallet_id", "id"])
    op.create_index("ix_sessions_credential_page", "sessions", ["credential_id", "id"])
    op.create_index("ix_wallets_owner_created", "wallets", ["owner", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_wallets_owner_created", table_name="wallets")
    op.drop_index("ix_sessions_credential_page", table_name="sessions")
    op.drop_index("ix_sessions_wallet_page", table_name="sessions")
