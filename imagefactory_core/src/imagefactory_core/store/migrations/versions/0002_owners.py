"""Several services on one database: who owns each image's work, and who is alive.

`images.owner` is the instance id (`statelock.instance_id`) of the service that last changed
an image's status: for an unfinished image, the one doing or queueing its work. `instances`
holds each service's heartbeat, so restart recovery leaves a live service's builds alone
(`store.instances`). Existing images get no owner: the first service to start recovers them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("owner", sa.String(36)))
    op.create_table(
        "instances",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("instances")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("owner")
