"""Image records and listings kept in memory between the store's writes (embedded mode only).

Status polls are the API's hot path, and each one read the database through SQLAlchemy twice
(the image, its children's ids). With 16 server threads every SQLite call releases and
re-takes the GIL, so those reads cost more in contention than in work (bench/api_load,
docs/reliability.md). When this process is the database's only writer, every change passes
through `ImageStore`, which tells the cache after each commit: a poll then needs no query.

Other processes may write the same SQLite file (the build worker `serve` starts beside the
API): then the cache is given `changed`, `SqliteChanges`, and is emptied whenever another
connection has committed since the last look (SQLite's ``PRAGMA data_version``, a few
microseconds). Between two commits of the worker a poll needs no query; while a build reports
progress, most still need none. With ``database_url`` (PostgreSQL, several hosts) the store
runs without a cache.

Coherence: a miss loads from the database *while holding the lock*, and a writer forgets
entries under the same lock *after* its commit. So either the forgetting comes first (the
load starts after the commit and sees it), or the load and its fill come first (and the
forgetting removes what they filled). After a write returns, no entry older than it remains.
Hits take no lock: one that races a write may return the value from just before it, as a read
that started before the commit would.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

DEFAULT_MAX_BYTES = 32 * 1024 * 1024


class RecordCache:
    """Values by key, loaded on a miss, forgotten by the writers; oldest dropped first past
    `max_bytes` (as estimated by the `cost` each fill gives: templates may be a megabyte).

    Keys are grouped: `forget_group` drops every key filled under a group (the listings of one
    kind of image, which any new image or status change of that kind may change)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES,
                 changed: SqliteChanges | None = None):
        """`changed`: how to learn that another process wrote the database."""
        self.max_bytes = max_bytes
        self.changed = changed
        self._lock = threading.Lock()
        # key -> (value, cost, group), in insertion order: oldest first
        self._values: dict[Hashable, tuple[object, int, Hashable | None]] = {}
        self._groups: dict[Hashable, set[Hashable]] = {}
        self._bytes = 0

    def get(self, key: Hashable, load: Callable[[], T | None], cost: Callable[[T], int],
            group: Hashable | None = None) -> T | None:
        """The cached value, or `load()`'s (kept unless None)."""
        if self.changed is not None:
            self.changed.forget_if_changed(self)
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

    def forget_all(self) -> None:
        with self._lock:
            self._values.clear()
            self._groups.clear()
            self._bytes = 0

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


class SqliteChanges:
    """Whether any connection but its own (any process) committed to a SQLite database since
    it last looked: SQLite's ``PRAGMA data_version`` on a connection kept for that."""

    def __init__(self, path: Path):
        self._connection = sqlite3.connect(str(path), check_same_thread=False,
                                           isolation_level=None)
        self._lock = threading.Lock()
        self._seen = self._version()

    def _version(self) -> int:
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def forget_if_changed(self, cache: RecordCache) -> None:
        """Empty `cache` if the database changed. The look and the emptying are one step:
        a reader that finds the version unchanged finds no entry from before the change."""
        with self._lock:
            version = self._version()
            if version != self._seen:
                cache.forget_all()
                self._seen = version
