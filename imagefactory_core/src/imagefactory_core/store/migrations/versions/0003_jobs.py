"""Build workers in their own processes: the jobs handed to them.

A row per queued or running job (`store.jobs`): which image, build or delete, the pool and
plugin it needs (so workers can be limited to some), the image it waits for, the sealed
credentials a push or cloud delete needs, the worker that claimed it and a cancellation
request. It is deleted when the job ends.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("image_id", sa.String(36), primary_key=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("pool", sa.String(16), nullable=False),
        sa.Column("plugin", sa.String(255), nullable=False),
        sa.Column("parent_id", sa.String(36)),
        sa.Column("payload", sa.LargeBinary),
        sa.Column("worker", sa.String(36)),
        sa.Column("cancel", sa.String(16)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_jobs_worker", "jobs", ["worker"])


def downgrade() -> None:
    op.drop_index("ix_jobs_worker", "jobs")
    op.drop_table("jobs")
