"""Image records and listings kept in memory between the store's writes (embedded mode only).

Status polls are the API's hot path, and each one read the database through SQLAlchemy twice
(the image, its children's ids). With 16 server threads every SQLite call releases and
re-takes the GIL, so those reads cost more in contention than in work (bench/api_load,
docs/reliability.md). When this process is the database's only writer, every change passes
through `ImageStore`, which tells the cache after each commit: a poll then needs no query.

Only correct when no other process writes the database. The embedded mode guarantees that: its
SQLite file lives in the state directory, which the service holds locked (`statelock`). With
``database_url`` (PostgreSQL, several service processes) the store runs without a cache.

Coherence: a miss loads from the database *while holding the lock*, and a writer forgets
entries under the same lock *after* its commit. So either the forgetting comes first (the
load starts after the commit and sees it), or the load and its fill come first (and the
forgetting removes what they filled). After a write returns, no entry older than it remains.
Hits take no lock: one that races a write may return the value from just before it, as a read
that started before the commit would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_MAX_BYTES = 32 * 1024 * 1024


class RecordCache:
    """Values by key, loaded on a miss, forgotten by the writers; oldest dropped first past
    `max_bytes` (as estimated by the `cost` each fill gives: templates may be a megabyte).

    Keys are grouped: `forget_group` drops every key filled under a group (the listings of one
    kind of image, which any new image or status change of that kind may change)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        # key -> (value, cost, group), in insertion order: oldest first
        self._values: dict[Hashable, tuple[object, int, Hashable | None]] = {}
        self._groups: dict[Hashable, set[Hashable]] = {}
        self._bytes = 0

    def get(self, key: Hashable, load: Callable[[], T | None], cost: Callable[[T], int],
            group: Hashable | None = None) -> T | None:
        """The cached value, or `load()`'s (kept unless None)."""
        entry = self._values.get(key)
        if entry is not None:
            return entry[0]  # type: ignore[return-value]
        with self._lock:
            entry = self._values.get(key)
            if entry is not None:
                return entry[0]  # type: ignore[return-value]
            value = load()
            if value is not None:
                self._fill(key, value, cost(value), group)
            return value

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._drop(key)

    def forget_group(self, group: Hashable) -> None:
        with self._lock:
            for key in list(self._groups.get(group, ())):
                self._drop(key)

    def _fill(self, key: Hashable, value: object, size: int, group: Hashable | None) -> None:
        if size > self.max_bytes:
            return
        self._values[key] = (value, size, group)
        self._bytes += size
        if group is not None:
            self._groups.setdefault(group, set()).add(key)
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._values)))

    def _drop(self, key: Hashable) -> None:
        entry = self._values.pop(key, None)
        if entry is not None:
            _, size, group = entry
            self._bytes -= size
            if group is not None:
                self._groups[group].discard(key)
