"""Initial schema: images and OAuth nonces.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("percent_complete", sa.Integer, nullable=False),
        sa.Column("activity", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("template", sa.Text),
        sa.Column("sealed", sa.LargeBinary),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("icicle", sa.Text),
        sa.Column("base_image_id", sa.String(36)),
        sa.Column("target_image_id", sa.String(36)),
        sa.Column("target", sa.String(64)),
        sa.Column("provider", sa.Text),
        sa.Column("identifier_on_provider", sa.Text),
        sa.Column("provider_account_identifier", sa.Text),
        sa.Column("properties", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_images_kind_status", "images", ["kind", "status"])
    op.create_index("ix_images_base_image_id", "images", ["base_image_id"])
    op.create_index("ix_images_target_image_id", "images", ["target_image_id"])
    op.create_table(
        "oauth_nonces",
        sa.Column("client_key", sa.String(255), primary_key=True),
        sa.Column("nonce", sa.String(255), primary_key=True),
        sa.Column("timestamp", sa.BigInteger, primary_key=True),
    )
    op.create_index("ix_oauth_nonces_timestamp", "oauth_nonces", ["timestamp"])


def downgrade() -> None:
    op.drop_table("oauth_nonces")
    op.drop_table("images")
