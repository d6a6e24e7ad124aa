"""Persistent state: image metadata (SQLAlchemy; SQLite by default, PostgreSQL for scale-out),
image bodies and build logs on disk, and the OAuth nonces shared by all server processes."""

from .cache import RecordCache
from .database import open_database
from .images import ImageStore
from .nonces import SqlNonceStore
from .sealing import Sealer

__all__ = ["ImageStore", "RecordCache", "Sealer", "SqlNonceStore", "open_database"]
