"""What every storage backend offers: objects named by key, moved as streams.

Image bodies (``<id>.body``) and build logs (``<id>.log``) are kept by a `Storage`. Bodies are
disks of gigabytes, so nothing here ever holds an object whole in memory: files are uploaded
and downloaded in bounded pieces, and reads are iterators of chunks.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from ..errors import ImageFactoryError

CHUNK = 1024 * 1024
"""Largest piece a read yields or a download writes at once."""

Cancelled = Callable[[], bool]


class StorageError(ImageFactoryError):
    """Storage refused or failed an operation; the message says which, where, and why (never
    a credential)."""


class Storage(Protocol):
    """A place for image bodies and build logs, by key."""

    def describe(self) -> str:
        """Where this storage is, for messages and logs (never a credential)."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The local file that *is* `key`, when this backend keeps objects as local files
        (jobs then write and read it in place), else None."""
        ...

    def size(self, key: str) -> int | None:
        """The size of `key` in bytes, None when there is no such object."""
        ...

    def put_file(self, key: str, path: Path, cancelled: Cancelled = lambda: False) -> None:
        """Store the file `path` as `key`, replacing it, in bounded pieces; a reader sees the
        old object or the new one, never part of one. Raises `StorageError`, also when
        `cancelled()` turned true on the way (nothing is then stored)."""
        ...

    def get_file(self, key: str, path: Path, cancelled: Cancelled = lambda: False) -> int:
        """Write `key` to the file `path` (runs of zeros become holes), check that every byte
        arrived, and return the size. Raises `StorageError` (then `path` is not written)."""
        ...

    def read(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """`length` bytes of `key` from `start`, at most `CHUNK` at a time. Nothing is asked of
        the backend before the first chunk is wanted."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; one that is not there is not an error."""
        ...

    def download_url(self, key: str, filename: str, seconds: int) -> str | None:
        """A URL from which a client can GET `key` (with Range) for `seconds`, without the
        service in between; None when this backend has none."""
        ...


PART = ".part-"
"""What the name of a file being written by `write_file` contains until it is whole."""


def body_key(image_id: str) -> str:
    return f"{image_id}.body"


def log_key(image_id: str) -> str:
    return f"{image_id}.log"


def write_file(path: Path, chunks: Iterable[bytes], expected: int | None,
               cancelled: Cancelled = lambda: False, where: str = "") -> int:
    """Write `chunks` to `path` through a file beside it that is renamed into place only once
    whole (`expected` bytes, when given): a reader never finds half a file at `path`.
    Chunks of zeros are skipped, leaving holes: a disk image keeps its sparseness."""
    part = path.with_name(f"{path.name}{PART}{uuid.uuid4().hex[:12]}")
    try:
        with open(part, "wb") as handle:
            size = 0
            for chunk in chunks:
                if cancelled():
                    raise StorageError(f"{where}: cancelled while copying {path.name}")
                if chunk.count(0) == len(chunk):
                    handle.seek(len(chunk), os.SEEK_CUR)
                else:
                    handle.write(chunk)
                size += len(chunk)
            handle.truncate(size)
        if expected is not None and size != expected:
            raise StorageError(f"{where}: {path.name} is {expected} bytes but {size} arrived")
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return size
