"""Image bodies as local files for the jobs that use them: plugins only ever see local paths.

With a storage that keeps local files (the default directory), a body's path *is* the stored
object: jobs write and read it in place and nothing is copied. With object storage, the
directory (``storage_path``) is this worker's cache:

* a job's own body is written there by its plugin, then uploaded (`store`) before the job
  may complete;
* a parent body a job reads (a base image for its target, a target image for its push) is
  downloaded there first (`fetch`): streamed to a file beside it, renamed once every byte
  arrived, kept when its size matches what storage holds;
* whatever a running job uses is held for it (`fetch`, `hold`) until `release`; the rest is
  evicted, least recently used first, once the copies take more than ``storage_cache_mib``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .base import PART, Cancelled, Storage, StorageError, body_key

_STRIPES = 64  # locks for downloads, shared by image ids (a lock per id would only grow)


class BodyCache:
    def __init__(self, storage: Storage, directory: Path, max_bytes: int):
        self.storage = storage
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._held: dict[str, set[str]] = {}  # job id -> the bodies it uses
        self._downloads = [threading.Lock() for _ in range(_STRIPES)]
        if self.copies:  # a previous process's unfinished downloads
            for leftover in directory.glob(f"*.body{PART}*"):
                leftover.unlink(missing_ok=True)

    @property
    def copies(self) -> bool:
        """True when the local files are copies of objects kept elsewhere."""
        return self.storage.local_path(body_key("probe")) is None

    def path(self, image_id: str) -> Path:
        """Where the body of `image_id` is (or will be) a local file."""
        return self.storage.local_path(body_key(image_id)) or self.directory / body_key(image_id)

    def hold(self, image_id: str, job: str) -> None:
        """Keep the local body of `image_id` for `job` (never evicted until `release`)."""
        with self._lock:
            self._held.setdefault(job, set()).add(image_id)

    def fetch(self, image_id: str, job: str, cancelled: Cancelled = lambda: False) -> Path:
        """The body of `image_id` as a local file, held for `job`; raises `StorageError` when
        storage has no such body or it cannot be copied whole."""
        path = self.path(image_id)
        if not self.copies:
            return path
        self.hold(image_id, job)
        with self._downloads[hash(image_id) % _STRIPES]:
            size = self.storage.size(body_key(image_id))
            if size is None:
                raise StorageError(f"{self.storage.describe()} has no body for image "
                                   f"{image_id}")
            if not (path.is_file() and path.stat().st_size == size):
                self.storage.get_file(body_key(image_id), path, cancelled)
            os.utime(path)  # the most recently used
        self._evict()
        return path

    def store(self, image_id: str, cancelled: Cancelled = lambda: False) -> None:
        """Upload the body a job wrote (`path`); nothing to do when it is stored in place."""
        if self.copies:
            self.storage.put_file(body_key(image_id), self.path(image_id), cancelled)

    def release(self, job: str) -> None:
        """`job` ended: what it held may be evicted."""
        with self._lock:
            self._held.pop(job, None)
        if self.copies:
            self._evict()

    def remove(self, image_id: str) -> None:
        """Delete the body from this worker's copies and from storage."""
        if self.copies:
            self.path(image_id).unlink(missing_ok=True)
        self.storage.delete(body_key(image_id))

    def _evict(self) -> None:
        """Remove the least recently used copies no job holds until all copies take at most
        `max_bytes` of disk (held ones count, and may keep the total above it)."""
        unheld: list[tuple[float, int, Path]] = []
        total = 0
        with self._lock:
            held = set().union(*self._held.values())
        for entry in os.scandir(self.directory):
            if not entry.name.endswith(".body") or not entry.is_file():
                continue
            stat = entry.stat()
            total += stat.st_blocks * 512
            if entry.name.removesuffix(".body") not in held:
                unheld.append((stat.st_mtime, stat.st_blocks * 512, Path(entry.path)))
        for _, used, path in sorted(unheld):
            if total <= self.max_bytes:
                return
            with self._lock:  # a job that holds it since the scan keeps it
                if path.name.removesuffix(".body") in set().union(*self._held.values()):
                    continue
                path.unlink(missing_ok=True)
            total -= used
