"""Persistent state: image metadata (SQLAlchemy; SQLite by default, PostgreSQL for scale-out),
image bodies and build logs on disk, the OAuth nonces shared by all server processes, and the
services sharing the database (which are alive, whose work each unfinished image is)."""

from .cache import RecordCache
from .database import open_database
from .images import ImageStore
from .instances import Instance, Instances
from .nonces import SqlNonceStore
from .sealing import Sealer

__all__ = ["ImageStore", "Instance", "Instances", "RecordCache", "Sealer", "SqlNonceStore",
           "open_database"]
