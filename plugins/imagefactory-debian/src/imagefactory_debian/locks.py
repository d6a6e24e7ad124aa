"""File locks (flock) that coordinate builds sharing a cache, in this process or others.

Waiting for a lock polls, so that a cancelled build stops waiting within a fraction of a second
instead of hanging until another build finishes. The kernel drops a lock when its holder dies,
so a crashed build never leaves a cache locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imagefactory_core.plugin import BuildContext

POLL_SECONDS = 0.2


class FileLock:
    """A lock on `path` (created when missing, never deleted: deleting lock files races)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def close(self) -> None:
        os.close(self._fd)  # also releases the lock

    def try_acquire(self, *, exclusive: bool) -> bool:
        """Take (or convert to) a shared or exclusive lock if that is possible right now."""
        try:
            fcntl.flock(self._fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def acquire(self, ctx: BuildContext, *, exclusive: bool, waiting: str) -> None:
        """Block until the lock is ours, logging `waiting` once if someone else holds it."""
        logged = False
        while not self.try_acquire(exclusive=exclusive):
            if not logged:
                ctx.log(waiting)
                logged = True
            ctx.check_cancelled()
            time.sleep(POLL_SECONDS)


@contextmanager
def locked(ctx: BuildContext, path: Path, *, exclusive: bool, waiting: str) -> Iterator[FileLock]:
    lock = FileLock(path)
    try:
        lock.acquire(ctx, exclusive=exclusive, waiting=waiting)
        yield lock
    finally:
        lock.close()
