"""The relayer's fenced lease, and the index of held reservations (issue 13).

``leases``: one row per lease (``name``, ``holder``, ``epoch``, ``expires_at_ms`` on the
database's clock); a relayer's every claim of a job is conditioned on its lease in the same
statement (see ``sessionward.store.lease``). It replaces the PostgreSQL advisory lock, which a
node lost with its connection while it went on relaying.

``ix_reservations_held``: a partial index of ``held`` reservations by creation time, so the
dispatcher's recovery pass finds a reservation that no call in flight carries without reading
every reservation ever made.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

HELD = "status = 'held'"


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_reservations_held",
        "reservations",
        ["created_at"],
        sqlite_where=sa.text(HELD),
        postgresql_where=sa.text(HELD),
    )


def downgrade() -> None:
    op.drop_index("ix_reservations_held", table_name="reservations")
    op.drop_table("leases")
