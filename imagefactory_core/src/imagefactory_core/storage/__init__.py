"""Where image bodies and build logs are kept: a local directory (the default) or S3-compatible
object storage, behind one small interface (`Storage`).

Plugins keep seeing local files either way: `BodyCache` gives jobs their bodies as local paths
and stores what they write, `LogMirror` appends build logs locally and copies them to storage.
"""

from .base import CHUNK, Storage, StorageError, body_key, log_key
from .bodies import BodyCache
from .factory import open_storage
from .local import LocalStorage
from .logs import LogMirror
from .s3 import S3Storage

__all__ = ["CHUNK", "BodyCache", "LocalStorage", "LogMirror", "S3Storage", "Storage",
           "StorageError", "body_key", "log_key", "open_storage"]
