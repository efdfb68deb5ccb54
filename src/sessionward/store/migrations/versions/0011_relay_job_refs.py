"""What a relay job carries (issue 16, item 3: several session calls of one account in one
transaction).

``relay_job_refs``: a job's refs in order, written in the same transaction as the job; for a
batch of session calls, their transaction ids, position ``i`` being the batch's call ``i``.
``ref`` is unique: a call belongs to one relay job at most, so once it went into a batch it
can never be queued again on its own (which would spend it twice, or record an executed call
as failed).

Existing data: jobs relayed before carry no refs (a call's own job is ``exec:<txn>``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_job_refs",
        sa.Column("job_id", sa.String(80), sa.ForeignKey("relay_jobs.job_id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("ref", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "position", name="pk_relay_job_refs"),
        sa.UniqueConstraint("ref", name="uq_relay_job_refs_ref"),
    )


def downgrade() -> None:
    op.drop_table("relay_job_refs")
