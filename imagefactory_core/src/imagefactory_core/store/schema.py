"""Database tables (SQLAlchemy Core). Changes to them ship as Alembic migrations in
`migrations/versions/`; `tests/test_store.py` checks the migrated schema matches these tables."""

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

images = Table(
    "images",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("percent_complete", Integer, nullable=False, default=0),
    Column("activity", Text, nullable=False, default=""),
    Column("error", Text),
    Column("template", Text),
    Column("sealed", LargeBinary),
    Column("parameters", Text, nullable=False, default="{}"),
    Column("icicle", Text),
    Column("base_image_id", String(36)),
    Column("target_image_id", String(36)),
    Column("target", String(64)),
    Column("provider", Text),
    Column("identifier_on_provider", Text),
    Column("provider_account_identifier", Text),
    Column("properties", Text, nullable=False, default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # the instance (statelock.instance_id) that last changed the status (store/instances.py)
    Column("owner", String(36)),
    Index("ix_images_kind_status", "kind", "status"),
    Index("ix_images_base_image_id", "base_image_id"),
    Index("ix_images_target_image_id", "target_image_id"),
)

oauth_nonces = Table(
    "oauth_nonces",
    metadata,
    Column("client_key", String(255), primary_key=True),
    Column("nonce", String(255), primary_key=True),
    Column("timestamp", BigInteger, primary_key=True),
    Index("ix_oauth_nonces_timestamp", "timestamp"),
)

# The services using this database, each saying it is alive (store/instances.py).
instances = Table(
    "instances",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("location", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
)

# Work handed to build workers in other processes (store/jobs.py): one row per queued or
# running job, deleted when it ends.
jobs = Table(
    "jobs",
    metadata,
    Column("image_id", String(36), primary_key=True),
    Column("action", String(16), nullable=False),
    Column("pool", String(16), nullable=False),
    Column("plugin", String(255), nullable=False),
    Column("parent_id", String(36)),
    Column("payload", LargeBinary),
    Column("worker", String(36)),
    Column("cancel", String(16)),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Index("ix_jobs_worker", "worker"),
)
