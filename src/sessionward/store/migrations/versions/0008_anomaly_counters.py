"""Anomaly counters kept incrementally (issue 16).

``anomaly_counters``: one row per counted subject of an anomaly rule (``deny:<session>``: the
session's denials; ``post_revocation:<credential>``: a credential's attempts after revocation).
``recent`` holds the events of the rule's window as ``second:count`` pairs, newest first; a
refusal updates one row instead of counting past decision events, so its cost does not grow
with the number of refusals before it.

Existing data: none is carried over. Counting restarts empty: a burst that straddles the upgrade
is counted from the upgrade on (at most one window, one minute or ten by default).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "anomaly_counters",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("recent", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("anomaly_counters")
