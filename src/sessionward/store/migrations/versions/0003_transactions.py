"""Transactions (quotes and executions), idempotent mutations, freeze-lift approvals, and the
session columns the service needs to install sessions on chain and number session calls.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(80)


def _uint256() -> sa.types.TypeEngine[Decimal]:
    return sa.Numeric(78, 0).with_variant(sa.String(78), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("owner_signature", sa.Text))
        batch.add_column(sa.Column("call_nonce", _uint256(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("onchain_enabled_at", sa.BigInteger))
    op.create_table(
        "transactions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("session_id", ID, sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("wallet_id", ID, sa.ForeignKey("wallets.id"), nullable=False),
        sa.Column("credential_id", ID, sa.ForeignKey("credentials.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("to_address", sa.String(42), nullable=False),
        sa.Column("value", _uint256(), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("fee_wei", _uint256(), nullable=False),
        sa.Column("action_class", sa.String(80), nullable=False),
        sa.Column("intent", sa.Text, nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("quote_expires_at", sa.BigInteger, nullable=False),
        sa.Column("executed_at", sa.BigInteger),
        sa.Column("finished_at", sa.BigInteger),
        sa.Column("reservation_id", ID),
        sa.Column("call_nonce", _uint256()),
        sa.Column("deadline", sa.BigInteger),
        sa.Column("mode", sa.LargeBinary),
        sa.Column("execution", sa.LargeBinary),
        sa.Column("signature", sa.LargeBinary),
        sa.Column("tx_hash", sa.String(66)),
        sa.Column("failure", sa.Text),
        sa.CheckConstraint(
            "status IN ('quoted', 'pending', 'executed', 'failed', 'denied')",
            name="ck_transactions_status",
        ),
    )
    op.create_index("ix_transactions_status", "transactions", ["status", "created_at"])
    op.create_index("ix_transactions_session", "transactions", ["session_id"])
    op.create_table(
        "idempotency",
        sa.Column("credential_id", ID, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("credential_id", "key", name="pk_idempotency"),
    )
    op.create_table(
        "freeze_lift_approvals",
        sa.Column("freeze_id", ID, sa.ForeignKey("freezes.id"), nullable=False),
        sa.Column("ops_credential_id", ID, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("freeze_id", "ops_credential_id", name="pk_freeze_lift_approvals"),
    )


def downgrade() -> None:
    op.drop_table("freeze_lift_approvals")
    op.drop_table("idempotency")
    op.drop_index("ix_transactions_session", table_name="transactions")
    op.drop_index("ix_transactions_status", table_name="transactions")
    op.drop_table("transactions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("onchain_enabled_at")
        batch.drop_column("call_nonce")
        batch.drop_column("owner_signature")
