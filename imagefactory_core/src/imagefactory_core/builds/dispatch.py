"""The API side of build workers in other processes: jobs become rows of the queue.

`Dispatcher` stands where the `BuildEngine` stands when builds run inside the API process:
`ImageService` calls the same `submit`, `delete_local` and `delete_provider`. Instead of
running anything it writes the job's row (`store.jobs`: the credentials sealed in it), records
the image PENDING and tells the queue (`builds.queues`); a worker claims the row and runs the
job. A DELETE of an image whose job no worker has claimed yet removes the row; one a worker
runs is asked to stop through the row (the worker looks every `CANCEL_POLL_SECONDS`).

So an API process holds no build: it can crash or restart and no job is lost, and any API
process of the database can cancel any job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from ..config import Config
from ..errors import BuildError
from ..model import ImageKind, ImageRecord, Status
from ..representation import full
from ..store import ImageStore
from ..store.jobs import JobRow, Jobs, Pool
from .callbacks import CallbackNotifier
from .deletion import busy_children, settled_without_cloud
from .engine import public_base_url
from .job import Job, Plan
from .queues import JobQueue

log = logging.getLogger(__name__)


def job_pool(kind: ImageKind) -> Pool:
    return "upload" if kind is ImageKind.PROVIDER else "build"


def job_plugin(record: ImageRecord, plan: Plan) -> str:
    """The plugin whose work the job is, by which workers may be limited: the OS plugin for
    base images and the target images built from them, the cloud plugin for pushes and for
    target images made from target images (an OVA)."""
    if record.kind is ImageKind.BASE or (record.kind is ImageKind.TARGET
                                         and not record.target_image_id):
        return plan.os_plugin or ""
    return plan.cloud_plugin or ""


class Dispatcher:
    def __init__(self, store: ImageStore, jobs: Jobs, queue: JobQueue, config: Config,
                 notifier: CallbackNotifier | None = None):
        self.store = store
        self.jobs = jobs
        self.queue = queue
        self.config = config
        self.notifier = notifier or CallbackNotifier(config.callback_timeout,
                                                     config.callback_retries,
                                                     config.outbound_allow)
        # jobs are queued in the order their PENDING was recorded (and called back)
        self._order = threading.Lock()

    def _set(self, image_id: str, callbacks: Sequence[str], **values: Any) -> ImageRecord:
        record = self.store.update(image_id, **values)
        if callbacks and "status" in values:
            try:
                self.notifier.notify(list(callbacks), full(public_base_url(self.config), record))
            except Exception:
                log.exception("could not queue the status callbacks of image %s", record.id)
        return record

    def _queue(self, record: ImageRecord, action: str, plan: Plan, parent_id: str | None,
               payload: dict[str, Any]) -> None:
        self.jobs.put(record.id, action, job_pool(record.kind), job_plugin(record, plan),
                      parent_id, payload)
        row = self.jobs.get(record.id)
        if row is not None and self.jobs.parent_ended(record.id):
            self._publish(row)

    def _publish(self, row: JobRow) -> None:
        """Hand the row to the queue; a broker that fails now is tried again by the workers'
        sweep of unpublished rows (`Worker`), so the job is late, not lost."""
        try:
            self.queue.publish(row)
            self.jobs.mark_published(row.image_id)
        except Exception:
            log.exception("could not hand image %s's job to the queue; the workers' sweep "
                          "will", row.image_id)

    # -- the engine's interface, for `ImageService` -----------------------------------------------
    def submit(self, record: ImageRecord, job: Job) -> None:
        payload = {"credentials": job.credentials} if job.credentials else {}
        with self._order:
            self._set(record.id, job.plan.callbacks, status=Status.PENDING,
                      activity="Queued" if job.parent_id is None
                      else f"Waiting for image {job.parent_id}")
            self._queue(record, "build", job.plan, job.parent_id, payload)

    def delete_local(self, record: ImageRecord, callbacks: Sequence[str] = ()) -> None:
        """Delete a base or target image; a job queued for it is dropped, a running one is
        asked to stop (its worker records it DELETED)."""
        busy_children(self.store, record)
        callbacks = self._callbacks(record.id, callbacks)
        if self._stop_job(record, callbacks, "Cancelling the build"):
            return
        self.store.remove_files(record.id)
        self._set(record.id, callbacks, status=Status.DELETED, activity="Deleted")

    def _stop_job(self, record: ImageRecord, callbacks: list[str], activity: str) -> bool:
        """Drop the image's queued job, or ask its worker to stop it and delete the image;
        whether it had a job. An unclaimed job is taken out of the queue before any worker
        can claim it (one DELETE statement), so it never starts."""
        if self.jobs.get(record.id) is None:
            return False
        if self.jobs.take_unclaimed(record.id):
            self.store.remove_files(record.id)
            self._set(record.id, callbacks, status=Status.DELETED, activity="Deleted")
            return True
        self.jobs.request_cancel(record.id, "delete", callbacks)
        self._set(record.id, callbacks, status=Status.DELETING, activity=activity)
        return True

    def delete_provider(self, record: ImageRecord, provider: str | dict[str, Any] | None,
                        credentials: dict[str, Any] | None, callbacks: Sequence[str] = (), *,
                        forget: bool = False) -> None:
        """As `BuildEngine.delete_provider`: a push still queued or running is stopped; a
        pushed image is deleted from its cloud by a worker, with `credentials`."""
        callbacks = self._callbacks(record.id, callbacks)
        record = self.store.get(record.id)
        if record.status is Status.DELETING:
            return
        if record.status.active and self._stop_job(record, callbacks, "Cancelling the push"):
            return
        if settled_without_cloud(self.store, record, credentials, forget,
                                 lambda **values: self._set(record.id, callbacks, **values)):
            return
        plan = Plan.from_json(self.store.sealed(record.id))
        self._set(record.id, callbacks, status=Status.DELETING, activity="Queued for deletion")
        self._queue(record, "delete", plan, None,
                    {"credentials": credentials, "provider": provider, "callbacks": callbacks})

    def _callbacks(self, image_id: str, extra: Sequence[str]) -> list[str]:
        try:
            stored = Plan.from_json(self.store.sealed(image_id)).callbacks
        except BuildError:
            stored = []
        return list(dict.fromkeys([*stored, *extra]))

    def recover(self, resume: bool = True) -> None:
        """Nothing to do here: the workers recover the jobs (`Worker.start`)."""

    def shutdown(self, timeout: float = 30.0) -> None:
        """Jobs go on in the workers; only the callbacks this process queued are waited for."""
        self.queue.close()
        self.notifier.drain(timeout)
