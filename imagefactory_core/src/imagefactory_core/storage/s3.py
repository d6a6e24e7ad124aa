"""Object storage that speaks S3 (AWS, MinIO, Ceph RGW, moto…), through boto3.

Uploads are multipart (`part_size` pieces, a few in flight, read from the file as they are
sent), downloads and reads stream the response in `CHUNK` pieces: memory stays bounded
whatever the size of a body. Credentials come from the configuration or boto3's standard
chain (environment, shared files, instance roles) and appear in no message.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import CHUNK, Cancelled, StorageError, write_file

PART_SIZE = 16 * 1024 * 1024
CONCURRENCY = 4
POLL_SECONDS = 0.2  # how often an upload in flight looks at its cancellation


class S3Storage:
    def __init__(self, client: Any, bucket: str, prefix: str = "", *,
                 part_size: int = PART_SIZE, concurrency: int = CONCURRENCY):
        """`client` is a boto3 S3 client; keys are stored under `prefix` in `bucket`."""
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.part_size = part_size
        self.concurrency = concurrency

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}"
        endpoint = getattr(self.client.meta, "endpoint_url", None)
        return f"{where} at {endpoint}" if endpoint else where

    def _failed(self, action: str, key: str, exc: Exception) -> StorageError:
        return StorageError(f"{self.describe()}: could not {action} {key}: {_reason(exc)}")

    def check(self) -> None:
        """Raise `StorageError` unless the bucket can be reached (checked at start-up)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise StorageError(f"{self.describe()}: the bucket cannot be reached: "
                               f"{_reason(exc)}") from exc

    def local_path(self, key: str) -> Path | None:
        return None

    def size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except Exception as exc:
            if _missing(exc):
                return None
            raise self._failed("look up", key, exc) from exc
        return int(head["ContentLength"])

    def put_file(self, key: str, path: Path, cancelled: Cancelled = lambda: False) -> None:
        try:
            if cancelled():
                raise InterruptedError
            if path.stat().st_size <= self.part_size:
                with open(path, "rb") as handle:  # sent as read, never held whole
                    self.client.put_object(Bucket=self.bucket, Key=self.prefix + key,
                                           Body=handle)
            else:
                self._put_parts(key, path, cancelled)
        except Exception as exc:
            if cancelled():
                raise StorageError(f"{self.describe()}: the upload of {key} was "
                                   "cancelled") from exc
            raise self._failed("upload", key, exc) from exc

    def _put_parts(self, key: str, path: Path, cancelled: Cancelled) -> None:
        """A multipart upload through s3transfer (parts read from the file as they are sent,
        `concurrency` at once); cancelled, it is aborted and nothing is stored."""
        from boto3.s3.transfer import TransferConfig
        from s3transfer.manager import TransferManager
        from s3transfer.subscribers import BaseSubscriber

        finished = threading.Event()

        class Finished(BaseSubscriber):  # type: ignore[misc]
            def on_done(self, future: Any, **kwargs: Any) -> None:
                finished.set()

        config = TransferConfig(multipart_threshold=self.part_size,
                                multipart_chunksize=self.part_size,
                                max_concurrency=self.concurrency, use_threads=True)
        with TransferManager(self.client, config) as manager:
            future = manager.upload(str(path), self.bucket, self.prefix + key,
                                    subscribers=[Finished()])
            while not finished.is_set():
                if cancelled():
                    future.cancel()
                    break
                finished.wait(POLL_SECONDS)
            future.result()

    def get_file(self, key: str, path: Path, cancelled: Cancelled = lambda: False) -> int:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except Exception as exc:
            raise self._failed("download", key, exc) from exc
        body = answer["Body"]
        try:
            return write_file(path, body.iter_chunks(CHUNK), int(answer["ContentLength"]),
                              cancelled, self.describe())
        except StorageError:
            raise
        except Exception as exc:
            raise self._failed("download", key, exc) from exc
        finally:
            body.close()

    def read(self, key: str, start: int, length: int) -> Iterator[bytes]:
        if length <= 0:
            return
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key,
                                            Range=f"bytes={start}-{start + length - 1}")
        except Exception as exc:
            raise self._failed("read", key, exc) from exc
        body = answer["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except Exception as exc:
            if not _missing(exc):
                raise self._failed("delete", key, exc) from exc

    def download_url(self, key: str, filename: str, seconds: int) -> str:
        try:
            return str(self.client.generate_presigned_url(
                "get_object", ExpiresIn=seconds,
                Params={"Bucket": self.bucket, "Key": self.prefix + key,
                        "ResponseContentType": "application/octet-stream",
                        "ResponseContentDisposition": f'attachment; filename="{filename}"'}))
        except Exception as exc:
            raise self._failed("sign a download URL for", key, exc) from exc


def _missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def _reason(exc: Exception) -> str:
    """What went wrong, in one line: the service's error code and message, or botocore's."""
    error = getattr(exc, "response", {}).get("Error", {})
    if error:
        return f"{error.get('Code', '?')}: {error.get('Message') or 'no message'}"
    return f"{type(exc).__name__}: {exc}".split("\n", 1)[0]
