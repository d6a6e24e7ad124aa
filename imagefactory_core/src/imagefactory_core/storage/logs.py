"""Build logs: appended to a local file, read by the API from storage.

With a storage that keeps local files (the default directory), the file appended to *is* the
stored log, and a reader sees every line at once. With object storage, a log is a local file
of this worker copied to storage as a whole object (logs are bounded by ``max_log_bytes``):

* while a job runs (`open` … `close`), lines are appended locally and the log is uploaded
  every ``log_upload_seconds`` when it changed, at once after a line that ends a build (the
  reason and the final status, written before the status is recorded), and at `close`;
* a line written outside a job (a build failed because its parent did, a provider image
  forgotten) is appended to the stored log: read, appended, written back.

Readers (``GET …/log``) see what storage holds: lines of a running job arrive up to
``log_upload_seconds`` late. One process writes an image's log at a time: the one running its
job, or the one that owns the image.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from .base import Storage, StorageError, log_key

log = logging.getLogger(__name__)
_STRIPES = 64
SNAPSHOT = ".upload"


class LogMirror:
    def __init__(self, storage: Storage, directory: Path, interval: float):
        self.storage = storage
        self.directory = directory
        self.interval = interval
        self._state = threading.Lock()
        self._open: set[str] = set()
        self._dirty: set[str] = set()
        self._flusher: threading.Thread | None = None
        # lock order: an upload's, then an append's (never the other way round)
        self._uploads = [threading.Lock() for _ in range(_STRIPES)]
        self._appends = [threading.Lock() for _ in range(_STRIPES)]
        if self.copies:
            for leftover in directory.glob(f"*.log{SNAPSHOT}"):
                leftover.unlink(missing_ok=True)

    @property
    def copies(self) -> bool:
        """True when the local files are copies of objects kept elsewhere."""
        return self.storage.local_path(log_key("probe")) is None

    def path(self, image_id: str) -> Path:
        """The local file lines of `image_id`'s log are appended to."""
        return self.storage.local_path(log_key(image_id)) or self.directory / log_key(image_id)

    def _locks(self, image_id: str) -> tuple[threading.Lock, threading.Lock]:
        stripe = hash(image_id) % _STRIPES
        return self._uploads[stripe], self._appends[stripe]

    # -- a job's log ------------------------------------------------------------------------
    def open(self, image_id: str) -> None:
        """A job of `image_id` starts: its lines go to the local file (which starts as the
        stored log, when there is one) and are uploaded periodically."""
        if not self.copies:
            return
        upload, append = self._locks(image_id)
        with upload, append:
            if not self.path(image_id).exists():
                self._download(image_id)
            with self._state:
                self._open.add(image_id)
                if self._flusher is None:
                    self._flusher = threading.Thread(target=self._flush, daemon=True,
                                                     name="log-upload")
                    self._flusher.start()

    def close(self, image_id: str) -> None:
        """The job ended: upload what changed, then forget the local file (kept when the
        upload failed: the next line written retries)."""
        if not self.copies:
            return
        upload, append = self._locks(image_id)
        with upload:  # from here, a line written goes the way of lines outside a job
            with self._state:
                self._open.discard(image_id)
            with append, self._state:  # after the lines being written as part of the job
                dirty = image_id in self._dirty
            if dirty and not self._upload(image_id):
                return
            with append, self._state:
                if image_id not in self._open and image_id not in self._dirty:
                    self.path(image_id).unlink(missing_ok=True)

    # -- writing ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def appending(self, image_id: str, *, publish: bool = False) -> Iterator[Path]:
        """The local file to append lines of `image_id`'s log to, for the duration of the
        block; `publish` uploads the log at once afterwards."""
        path = self.path(image_id)
        if not self.copies:
            yield path
            return
        upload, append = self._locks(image_id)
        with append:
            with self._state:
                running = image_id in self._open
            if running:  # a job's line: local now, uploaded later (or at once: `publish`)
                yield path
                with self._state:
                    self._dirty.add(image_id)
        if running:
            if publish:
                with upload:
                    self._upload(image_id)
            return
        with upload:  # outside a job: read, append, write back, under one lock
            with append:
                if not path.exists():
                    self._download(image_id)
                yield path
            if self._upload(image_id):
                with append, self._state:
                    if image_id not in self._open and image_id not in self._dirty:
                        path.unlink(missing_ok=True)

    def _download(self, image_id: str) -> None:
        """The stored log (if any) as the local file; caller holds both locks."""
        try:
            if self.storage.size(log_key(image_id)) is not None:
                self.storage.get_file(log_key(image_id), self.path(image_id))
        except StorageError as exc:  # lines still go to the local file, and up later
            log.warning("could not read the build log of image %s: %s", image_id, exc)

    def _upload(self, image_id: str) -> bool:
        """Copy the log to storage as it is now; caller holds the upload lock. A failure is
        logged (the log is uploaded again later), never raised: a build does not fail
        because its log could not be copied."""
        _, append = self._locks(image_id)
        path = self.path(image_id)
        snapshot = path.with_name(path.name + SNAPSHOT)
        with append:  # whole lines only: appends wait for the copy (local, short)
            if not path.is_file():
                return True
            shutil.copyfile(path, snapshot)
            with self._state:
                self._dirty.discard(image_id)
        try:
            self.storage.put_file(log_key(image_id), snapshot)
            return True
        except StorageError as exc:
            with self._state:
                self._dirty.add(image_id)
            log.warning("could not upload the build log of image %s: %s", image_id, exc)
            return False
        finally:
            snapshot.unlink(missing_ok=True)

    def _flush(self) -> None:
        """Upload the logs of running jobs that changed, every `interval` seconds, while any
        job runs."""
        while True:
            time.sleep(self.interval)
            with self._state:
                if not self._open:
                    self._flusher = None
                    return
                due = sorted(self._dirty & self._open)
            for image_id in due:
                upload, _ = self._locks(image_id)
                with upload:
                    self._upload(image_id)
