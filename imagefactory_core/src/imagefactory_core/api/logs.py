"""Build logs as response bodies: read from storage in chunks, and followed within bounds.

A follower (``GET …/log?follow=true``) holds one of the server's threads until its image
settles. `Followers` bounds how many may do so at once (configuration ``log_followers``, well
below ``server_threads``), so followers can never take every thread from status reads, and how
long each may follow (``log_follow_seconds``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator

import falcon

from ..storage import CHUNK, Storage

__all__ = ["CHUNK", "FollowedLog", "Followers"]
POLL_SECONDS = 0.5
RETRY_AFTER_SECONDS = 10


class Followers:
    """Slots for log followers: at most `limit` at once, each for at most `max_seconds`."""

    def __init__(self, limit: int, max_seconds: float):
        self.limit = limit
        self.max_seconds = max_seconds
        self._slots = threading.BoundedSemaphore(limit)

    def follow(self, storage: Storage, key: str, settled: Callable[[], bool]) -> FollowedLog:
        """The response body following the log `key` in `storage` until `settled()` or the
        time limit; a 503 (with Retry-After) when every slot is taken."""
        if not self._slots.acquire(blocking=False):
            raise falcon.HTTPServiceUnavailable(
                title="Too many log followers",
                description=f"{self.limit} requests already follow build logs, the most this "
                            "service allows at once (configuration key log_followers). Retry "
                            "later, or GET the log without follow=true.",
                retry_after=RETRY_AFTER_SECONDS)
        return FollowedLog(self._chunks(storage, key, settled), self._slots.release)

    def _chunks(self, storage: Storage, key: str,
                settled: Callable[[], bool]) -> Generator[bytes, None, None]:
        offset = 0
        deadline = time.monotonic() + self.max_seconds
        while True:
            done = settled()  # before reading: what the log holds then includes the last line
            size = storage.size(key) or 0
            if size > offset:
                for chunk in storage.read(key, offset, size - offset):
                    offset += len(chunk)
                    yield chunk
            if done:
                return
            if time.monotonic() >= deadline:
                yield (f"[imagefactory: stopped following after {self.max_seconds:g} s "
                       "(configuration key log_follow_seconds); the build goes on: request "
                       "the log again]\n").encode()
                return
            time.sleep(POLL_SECONDS)


class FollowedLog:
    """A WSGI response body that gives its follower slot back when the server closes it.

    PEP 3333 servers call ``close()`` whether the body was sent, cut short by the client, or
    never started; a generator's ``finally`` would not run in the last case.
    """

    def __init__(self, chunks: Generator[bytes, None, None], release: Callable[[], None]):
        self._chunks = chunks
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> FollowedLog:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()
        release, self._release = self._release, None
        if release is not None:
            release()
