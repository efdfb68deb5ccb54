"""Session calls submitted as ERC-4337 user operations (issue 17).

``user_operations``: one row per operation planned for a transaction's Execute in ``userop``
mode, written before the unit of work that signs it. ``operation`` is the operation's fields
in the bundler's JSON form without its signature (the session key's signature is the
transaction's own ``signature``); ``user_op_hash`` is what that signature covers, so the row a
signature belongs to is the one whose hash it signs. ``submitted_at`` is set once a bundler
took it.

Existing data: none (a new table).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_operations",
        sa.Column("user_op_hash", sa.String(66), primary_key=True),
        sa.Column("txn_id", sa.String(80), nullable=False),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("operation", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("submitted_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_user_operations_txn", "user_operations", ["txn_id"])


def downgrade() -> None:
    op.drop_index("ix_user_operations_txn", table_name="user_operations")
    op.drop_table("user_operations")
