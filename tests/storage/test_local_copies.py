"""What jobs get from object storage (a real moto server): bodies as local copies held while
used and evicted least recently used first beyond the limit, logs appended locally and copied
to the bucket during a job, and read, appended and written back outside one."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from imagefactory_core.storage import BodyCache, LogMirror, S3Storage, StorageError

MiB = 1024 * 1024


@pytest.fixture
def s3(moto_endpoint, bucket) -> S3Storage:  # type: ignore[no-untyped-def]
    from .conftest import PART_SIZE, s3_client

    return S3Storage(s3_client(moto_endpoint), bucket, "prefix", part_size=PART_SIZE)


def stored_bodies(s3: S3Storage, tmp_path: Path, *names: str) -> dict[str, bytes]:
    made = {}
    for name in names:
        data = os.urandom(MiB)
        (tmp_path / name).write_bytes(data)
        s3.put_file(f"{name}.body", tmp_path / name)
        made[name] = data
    return made


def local(cache: BodyCache) -> set[str]:
    return {p.name.removesuffix(".body") for p in cache.directory.glob("*.body")}


def test_copies_are_held_while_used_and_evicted_least_recently_used_first(s3, tmp_path):
    data = stored_bodies(s3, tmp_path, "a", "b", "c")
    directory = tmp_path / "copies"
    directory.mkdir()
    cache = BodyCache(s3, directory, max_bytes=MiB * 5 // 2)
    assert cache.fetch("a", "job1").read_bytes() == data["a"]
    cache.fetch("b", "job1")
    cache.release("job1")
    assert local(cache) == {"a", "b"}  # 2 MiB: within the limit
    cache.fetch("c", "job2")
    assert local(cache) == {"b", "c"}  # a was the least recently used
    cache.fetch("a", "job3")
    assert local(cache) == {"c", "a"}  # both held: b goes, though newer than a's last use
    cache.max_bytes = 0
    cache.release("job2")
    assert local(cache) == {"a"}  # held by job3 still
    cache.release("job3")
    assert local(cache) == set()


def test_a_copy_that_differs_from_storage_is_fetched_again(s3, tmp_path):
    data = stored_bodies(s3, tmp_path, "a")
    directory = tmp_path / "copies"
    directory.mkdir()
    (directory / "a.body").write_bytes(b"half a disk")  # a previous process died writing it
    (directory / "b.body.part-0123").write_bytes(b"an unfinished download")
    cache = BodyCache(s3, directory, max_bytes=10 * MiB)
    assert not (directory / "b.body.part-0123").exists()
    assert cache.fetch("a", "job").read_bytes() == data["a"]
    with pytest.raises(StorageError, match="has no body for image missing"):
        cache.fetch("missing", "job")
    cache.remove("a")
    assert s3.size("a.body") is None and local(cache) == set()


def test_a_job_log_is_copied_while_it_runs_and_when_it_ends(s3, tmp_path):
    logs = LogMirror(s3, tmp_path, interval=0.1)

    def append(line: bytes, publish: bool = False) -> None:
        with logs.appending("img", publish=publish) as path, path.open("ab") as handle:
            handle.write(line)

    def stored() -> bytes:
        return b"".join(s3.read("img.log", 0, s3.size("img.log") or 0))

    append(b"queued\n")  # outside a job: straight to the bucket
    append(b"re-queued\n")
    assert stored() == b"queued\nre-queued\n" and not logs.path("img").exists()
    logs.open("img")
    assert logs.path("img").read_bytes() == b"queued\nre-queued\n"
    append(b"building\n")
    deadline = time.monotonic() + 5
    while stored() != b"queued\nre-queued\nbuilding\n":
        assert time.monotonic() < deadline, "the running job's log was never uploaded"
        time.sleep(0.05)
    append(b"== COMPLETE\n", publish=True)
    assert stored().endswith(b"== COMPLETE\n")
    logs.close("img")
    assert not logs.path("img").exists()


def test_a_log_the_bucket_refuses_stays_local_until_it_can_be_copied(s3, tmp_path,
                                                                    moto_endpoint, caplog):
    from .conftest import s3_client

    logs = LogMirror(s3, tmp_path, interval=0.1)
    s3_client(moto_endpoint).delete_bucket(Bucket=s3.bucket)
    with caplog.at_level(logging.WARNING), logs.appending("img") as path, \
            path.open("ab") as handle:
        handle.write(b"FAILED: parent failed\n")
    assert "could not upload the build log of image img" in caplog.text
    assert logs.path("img").read_bytes() == b"FAILED: parent failed\n"
    s3_client(moto_endpoint).create_bucket(Bucket=s3.bucket)
    with logs.appending("img") as path, path.open("ab") as handle:
        handle.write(b"== FAILED\n")
    assert b"".join(s3.read("img.log", 0, 100)) == b"FAILED: parent failed\n== FAILED\n"
    assert not logs.path("img").exists()
