"""Wallets whose sessions live in SessionWard's ERC-7579 module (issue 17, item 5).

``wallets.session_module``: the address of the SessionWardModule the account has installed as
validator and executor, for a third-party ERC-7579 account registered with
``accountKind: erc7579``; NULL for a SessionAccount, whose sessions live in the account itself.
Recorded per wallet (not read from the configuration at each use), so the module a wallet was
registered with stays the one the service drives.

Existing data: every existing wallet is a SessionAccount (NULL).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: a batch (copy-and-move) migration would drop and
    # re-create ``wallets``, which SQLite refuses once other tables' rows refer to it.
    op.add_column("wallets", sa.Column("session_module", sa.String(42), nullable=True))


def downgrade() -> None:
    # DROP COLUMN: PostgreSQL, and SQLite from 3.35 (Python 3.11's sqlite3 is newer).
    op.execute("ALTER TABLE wallets DROP COLUMN session_module")
