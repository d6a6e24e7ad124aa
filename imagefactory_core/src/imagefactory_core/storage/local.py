"""The default storage: a local directory (``storage_path``), objects as files named by key.

Jobs write and read these files in place (`local_path`), so the embedded default copies
nothing: a body is stored the moment its plugin finishes writing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .base import CHUNK, Cancelled, StorageError, write_file


class LocalStorage:
    def __init__(self, root: Path):
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def local_path(self, key: str) -> Path:
        return self.root / key

    def size(self, key: str) -> int | None:
        path = self.root / key
        return path.stat().st_size if path.is_file() else None

    def put_file(self, key: str, path: Path, cancelled: Cancelled = lambda: False) -> None:
        destination = self.root / key
        if path.resolve() == destination.resolve():
            return
        size = path.stat().st_size
        write_file(destination, _chunks(path, 0, size), size, cancelled, self.describe())

    def get_file(self, key: str, path: Path, cancelled: Cancelled = lambda: False) -> int:
        size = self.size(key)
        if size is None:
            raise StorageError(f"{self.describe()} has no {key}")
        if path.resolve() == (self.root / key).resolve():
            return size
        return write_file(path, _chunks(self.root / key, 0, size), size, cancelled,
                          self.describe())

    def read(self, key: str, start: int, length: int) -> Iterator[bytes]:
        return _chunks(self.root / key, start, length)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def download_url(self, key: str, filename: str, seconds: int) -> str | None:
        return None


def _chunks(path: Path, start: int, length: int) -> Iterator[bytes]:
    """`length` bytes of `path` from `start`, `CHUNK` at a time; the file is opened when the
    first chunk is wanted."""
    with open(path, "rb") as handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
