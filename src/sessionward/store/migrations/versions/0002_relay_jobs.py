"""Relay jobs: the relayer's write-ahead record of every transaction it owes.

One row per job (see ``sessionward.chain.relay_jobs``). Self-contained like every migration.
The partial unique index forbids two *outstanding* (signed or submitted) jobs of one sender on
the same nonce, so two relayer processes can never both sign a nonce.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-20
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OUTSTANDING = "state IN ('signed', 'submitted')"


def _uint256() -> sa.types.TypeEngine[Decimal]:
    return sa.Numeric(78, 0).with_variant(sa.String(78), "sqlite")


def upgrade() -> None:
    op.create_table(
        "relay_jobs",
        sa.Column("job_id", sa.String(80), primary_key=True),
        sa.Column("sender", sa.String(42), nullable=False),
        sa.Column("to_address", sa.String(42), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("value", _uint256(), nullable=False),
        sa.Column("gas_limit", sa.BigInteger, nullable=False),
        sa.Column("fee_cap_wei", _uint256(), nullable=True),
        sa.Column("authorization_list", sa.LargeBinary, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("nonce", sa.BigInteger, nullable=True),
        sa.Column("max_fee_per_gas", _uint256(), nullable=True),
        sa.Column("max_priority_fee_per_gas", _uint256(), nullable=True),
        sa.Column("raw_tx", sa.LargeBinary, nullable=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("tx_hashes", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("submitted_at_ms", sa.BigInteger, nullable=True),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=True),
        sa.Column("block_number", sa.BigInteger, nullable=True),
        sa.Column("gas_used", sa.BigInteger, nullable=True),
        sa.Column("effective_gas_price", _uint256(), nullable=True),
        sa.Column("revert_reason", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_relay_jobs_sender_state", "relay_jobs", ["sender", "state"])
    op.create_index(
        "uq_relay_jobs_outstanding_nonce",
        "relay_jobs",
        ["sender", "nonce"],
        unique=True,
        sqlite_where=sa.text(OUTSTANDING),
        postgresql_where=sa.text(OUTSTANDING),
    )


def downgrade() -> None:
    op.drop_index("uq_relay_jobs_outstanding_nonce", table_name="relay_jobs")
    op.drop_index("ix_relay_jobs_sender_state", table_name="relay_jobs")
    op.drop_table("relay_jobs")
