"""The storage contract, held by both backends (the `storage` fixture is each in turn): files
in and out as streams in bounded memory (multipart on S3), byte ranges, sizes, deletes, and
the failures a caller must be able to tell apart."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
import urllib.request
from pathlib import Path

import pytest
from imagefactory_core.storage import CHUNK, S3Storage, Storage, StorageError

from .conftest import PART_SIZE

MiB = 1024 * 1024
BIG = 6 * PART_SIZE + 12345  # seven parts, the last one short
MEMORY_BOUND = 16 * MiB  # well under BIG: a whole copy in memory would cross it


def sparse_file(path: Path, size: int) -> Path:
    """A file of `size` bytes, mostly a hole, with random data every 3 MiB and at its end."""
    with path.open("wb") as handle:
        handle.truncate(size)
        for offset in [*range(0, size - 4096, 3 * MiB), size - 4096]:
            handle.seek(offset)
            handle.write(os.urandom(4096))
    return path


def digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def test_a_large_file_goes_in_and_out_whole_in_bounded_memory(storage: Storage,
                                                              tmp_path: Path) -> None:
    source = sparse_file(tmp_path / "disk.raw", BIG)
    back = tmp_path / "back.raw"
    tracemalloc.start()
    try:
        storage.put_file("image.body", source)
        assert storage.size("image.body") == BIG
        assert storage.get_file("image.body", back) == BIG
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"{peak / MiB:.1f} MiB in memory at once for a {BIG / MiB:.0f} " \
                                "MiB file"
    assert digest(back) == digest(source)
    if isinstance(storage, S3Storage):  # seven parts: the ETag of a multipart upload says so
        head = storage.client.head_object(Bucket=storage.bucket, Key="some/prefix/image.body")
        assert head["ETag"].strip('"').endswith("-7")
    assert back.stat().st_blocks * 512 < BIG // 2  # holes (whole chunks of zeros) stay holes
    assert list(tmp_path.glob("*.part-*")) == []


def test_ranges(storage: Storage, tmp_path: Path) -> None:
    source = sparse_file(tmp_path / "disk.raw", 3 * CHUNK + 100)
    data = source.read_bytes()
    storage.put_file("image.body", source)
    for start, length in [(0, 16), (7, 1), (CHUNK - 5, 10), (CHUNK, 2 * CHUNK + 100),
                          (len(data) - 10, 10), (0, len(data))]:
        chunks = list(storage.read("image.body", start, length))
        assert all(len(chunk) <= CHUNK for chunk in chunks)
        assert b"".join(chunks) == data[start:start + length]
    assert list(storage.read("image.body", 5, 0)) == []


def test_reading_asks_nothing_until_the_first_chunk(storage: Storage) -> None:
    """A HEAD of raw_image builds a body it never sends: that must cost no request."""
    reader = storage.read("nothing-here.body", 0, 10)
    with pytest.raises((StorageError, FileNotFoundError)):
        next(iter(reader))


def test_sizes_replacing_and_deleting(storage: Storage, tmp_path: Path) -> None:
    assert storage.size("a.log") is None
    (tmp_path / "one").write_bytes(b"first version\n")
    (tmp_path / "two").write_bytes(b"v2\n")
    (tmp_path / "empty").write_bytes(b"")
    storage.put_file("a.log", tmp_path / "one")
    assert storage.size("a.log") == 14
    storage.put_file("a.log", tmp_path / "two")
    assert storage.size("a.log") == 3
    assert b"".join(storage.read("a.log", 0, 3)) == b"v2\n"
    storage.put_file("empty.log", tmp_path / "empty")
    assert storage.size("empty.log") == 0
    storage.delete("a.log")
    assert storage.size("a.log") is None
    storage.delete("a.log")  # already gone: not an error
    assert storage.size("empty.log") == 0


def test_getting_what_is_not_there_writes_nothing(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"missing\.body"):
        storage.get_file("missing.body", tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("out")] == []


def test_a_cancelled_upload_stores_nothing(storage: Storage, tmp_path: Path) -> None:
    source = sparse_file(tmp_path / "disk.raw", BIG)
    with pytest.raises(StorageError, match="cancelled"):
        storage.put_file("image.body", source, cancelled=lambda: True)
    assert storage.size("image.body") is None


def test_a_download_url_serves_ranges_without_the_service(storage: Storage,
                                                          tmp_path: Path) -> None:
    source = sparse_file(tmp_path / "disk.raw", 2 * CHUNK)
    storage.put_file("image.body", source)
    url = storage.download_url("image.body", "image.raw", 60)
    if storage.local_path("image.body") is not None:
        assert url is None  # a directory has no URL of its own: the API serves it
        return
    assert url is not None
    request = urllib.request.Request(url, headers={"Range": "bytes=10-4105"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 206
        assert answer.headers["Content-Range"] == f"bytes 10-4105/{2 * CHUNK}"
        assert answer.read() == source.read_bytes()[10:4106]
