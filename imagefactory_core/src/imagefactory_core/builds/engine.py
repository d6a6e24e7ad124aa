"""The build engine: bounded worker pools, cascades, cancellation, restart recovery.

Local work (base and target builds) runs on a pool of `max_concurrent_local_sessions` threads;
pushes and provider deletes on a separate pool of `max_concurrent_uploads`, so a long upload
never blocks a build. Heavy lifting happens in plugin subprocesses, so threads suffice.

A job whose parent image is not COMPLETE yet waits (PENDING) and is queued when the parent
completes, or failed with the parent's reason when the parent fails.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..context import BuildContext
from ..errors import BuildCancelled, BuildError, Conflict, ImageFactoryError, InvalidRequest
from ..model import ImageKind, ImageRecord, Status
from ..plugins import PluginHost
from ..representation import full
from ..store import ImageStore
from .callbacks import CallbackNotifier
from .work import JobSecrets, Work, remove_tree

log = logging.getLogger(__name__)

RESTARTED = "re-queued: the service restarted during the build"
PUSH_INTERRUPTED = ("the service restarted during the push; credentials are never stored, so "
                    "it cannot resume: POST the provider image again")
STOPPED = "cancelled: the service was stopped during the build; POST the image again"


@dataclass
class Job:
    image_id: str
    kind: ImageKind
    action: str  # "build" or "delete"
    parent_id: str | None
    secrets: JobSecrets


class BuildEngine:
    def __init__(self, store: ImageStore, plugins: PluginHost, config: Config,
                 notifier: CallbackNotifier | None = None):
        self.store = store
        self.plugins = plugins
        self.config = config
        self.work = Work(store, plugins, config.plugin_config)
        self.notifier = notifier or CallbackNotifier(config.callback_timeout,
                                                     config.callback_retries)
        self._local = ThreadPoolExecutor(config.max_concurrent_local_sessions, "build")
        self._uploads = ThreadPoolExecutor(config.max_concurrent_uploads, "upload")
        self._lock = threading.RLock()
        self._cancel: dict[str, threading.Event] = {}
        self._running: set[str] = set()
        self._delete_after_cancel: set[str] = set()
        self._waiting: dict[str, list[Job]] = defaultdict(list)
        self._stopping = False

    # -- status changes -------------------------------------------------------------------------
    def _set(self, image_id: str, callbacks: list[str], **values: Any) -> ImageRecord:
        record = self.store.update(image_id, **values)
        if callbacks and "status" in values:
            self.notifier.notify(callbacks, full(self._base_url(), record))
        return record

    def _base_url(self) -> str:
        scheme = "http" if self.config.no_ssl else "https"
        host = "127.0.0.1" if self.config.address in ("0.0.0.0", "::") else self.config.address
        return self.config.public_url or f"{scheme}://{host}:{self.config.port}"

    # -- submission -----------------------------------------------------------------------------
    def submit(self, record: ImageRecord, secrets: JobSecrets) -> None:
        """Queue the build (or push) of a NEW image; it waits for its parent if needed."""
        parent = record.target_image_id or record.base_image_id
        job = Job(record.id, record.kind, "build", parent, secrets)
        with self._lock:
            self._cancel[record.id] = threading.Event()
            self._set(record.id, secrets.callbacks, status=Status.PENDING,
                      activity="Queued" if parent is None else f"Waiting for image {parent}")
            self._schedule(job)

    def _schedule(self, job: Job) -> None:
        with self._lock:
            if job.parent_id is not None:
                parent = self.store.get(job.parent_id)
                if parent.status.active or parent.status is Status.DELETING:
                    self._waiting[job.parent_id].append(job)
                    return
                if parent.status is not Status.COMPLETE:
                    reason = parent.status_detail.error or parent.status.value.lower()
                    self._fail_cascade(job, f"{parent.kind.value} {parent.id} "
                                            f"{parent.status.value}: {reason}")
                    return
            pool = self._uploads if job.kind is ImageKind.PROVIDER else self._local
            pool.submit(self._execute, job)

    def _fail_cascade(self, job: Job, reason: str) -> None:
        self._cancel.pop(job.image_id, None)
        self._set(job.image_id, job.secrets.callbacks, status=Status.FAILED, error=reason,
                  activity="Parent image did not complete")
        self.store.append_log(job.image_id, f"FAILED: {reason}")
        for child in self._waiting.pop(job.image_id, []):
            self._fail_cascade(child, f"{job.kind.value} {job.image_id} FAILED: {reason}")

    def _release_children(self, image_id: str) -> None:
        with self._lock:
            for child in self._waiting.pop(image_id, []):
                self._schedule(child)

    # -- execution ------------------------------------------------------------------------------
    def _context(self, record: ImageRecord, event: threading.Event, plugin_id: str | None) \
            -> BuildContext:
        workdir = self.config.work_dir / record.id
        workdir.mkdir(parents=True, exist_ok=True)
        return BuildContext(
            image_id=record.id,
            workdir=workdir,
            body_path=record.body_path,
            cache_root=self.config.cache_dir,
            config=self.config.plugin_config(plugin_id) if plugin_id else {},
            progress_sink=lambda percent, activity: self.store.set_progress(record.id, percent,
                                                                            activity),
            log_sink=lambda line: self.store.append_log(record.id, line),
            cancel_event=event,
        )

    def _plugin_for(self, record: ImageRecord, secrets: JobSecrets) -> str | None:
        try:
            if record.kind is ImageKind.BASE:
                return self.plugins.resolve_os(self.work.template(secrets).os).id
            return self.plugins.resolve_cloud(record.target)[0].id
        except ImageFactoryError:
            return None  # the job itself reports the problem

    def _execute(self, job: Job) -> None:
        with self._lock:
            event = self._cancel.get(job.image_id)
            if event is None or event.is_set() or self._stopping:
                return
            self._running.add(job.image_id)
        record = self.store.get(job.image_id)
        callbacks = job.secrets.callbacks
        ctx = self._context(record, event, self._plugin_for(record, job.secrets))
        deleting = job.action == "delete"
        self._set(record.id, callbacks, status=Status.DELETING if deleting else Status.BUILDING,
                  activity="Starting")
        final: dict[str, Any]
        try:
            if deleting:
                self.work.unpush(record, ctx, job.secrets)
                final = {"status": Status.DELETED, "activity": "Deleted from the provider"}
            else:
                run: Callable[..., dict[str, Any]] = {
                    ImageKind.BASE: self.work.base, ImageKind.TARGET: self.work.target,
                    ImageKind.PROVIDER: self.work.push}[job.kind]
                final = {**run(record, ctx, job.secrets), "status": Status.COMPLETE,
                         "percent_complete": 100, "activity": "Complete", "error": None}
        except BuildCancelled:
            final = self._cancelled_outcome(job)
        except BuildError as exc:
            ctx.log(f"FAILED: {exc}")
            final = self._failed_outcome(job, ctx.redact(str(exc)))
        except InvalidRequest as exc:
            ctx.log(f"FAILED: {exc}")
            final = self._failed_outcome(job, ctx.redact(str(exc)))
        except Exception as exc:  # a plugin bug: keep the service up, keep the traceback
            ctx.log(traceback.format_exc())
            final = self._failed_outcome(
                job, ctx.redact(f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            remove_tree(ctx.workdir)
        self._finish(job, final)

    def _failed_outcome(self, job: Job, message: str) -> dict[str, Any]:
        if job.action == "delete":
            return {"status": Status.DELETEFAILED, "error": message, "activity": "Delete failed"}
        self.store.remove_files(job.image_id)
        return {"status": Status.FAILED, "error": message, "activity": "Failed"}

    def _cancelled_outcome(self, job: Job) -> dict[str, Any]:
        if job.action == "delete":
            return {"status": Status.DELETEFAILED, "error": STOPPED, "activity": "Cancelled"}
        if job.image_id in self._delete_after_cancel:
            self.store.remove_files(job.image_id)
            return {"status": Status.DELETED, "activity": "Cancelled and deleted"}
        self.store.remove_files(job.image_id)
        if self._stopping:
            return {"status": Status.FAILED, "error": STOPPED, "activity": "Cancelled"}
        return {"status": Status.FAILED, "error": "cancelled", "activity": "Cancelled"}

    def _finish(self, job: Job, final: dict[str, Any]) -> None:
        with self._lock:
            # log first: a follower of the log stops once it sees the final status
            self.store.append_log(job.image_id, f"== {final['status'].value}")
            self._set(job.image_id, job.secrets.callbacks, **final)
            self._running.discard(job.image_id)
            self._cancel.pop(job.image_id, None)
            self._delete_after_cancel.discard(job.image_id)
            if final["status"] is Status.COMPLETE:
                self._release_children(job.image_id)
            else:
                reason = final.get("error") or final["status"].value.lower()
                for child in self._waiting.pop(job.image_id, []):
                    self._fail_cascade(child, f"{job.kind.value} {job.image_id} "
                                              f"{final['status'].value}: {reason}")

    # -- deletion -------------------------------------------------------------------------------
    def delete_local(self, record: ImageRecord) -> None:
        """Delete a base or target image; a build in progress is cancelled first."""
        child_kind = ImageKind.TARGET if record.kind is ImageKind.BASE else ImageKind.PROVIDER
        link = "base_image_id" if record.kind is ImageKind.BASE else "target_image_id"
        busy = [c.id for c in self.store.list(child_kind, **{link: record.id})
                if c.status.active or c.status is Status.DELETING]
        if busy:
            raise Conflict(f"{child_kind.collection} {', '.join(busy)} are still being built "
                           f"from {record.id}; delete them first")
        callbacks = self._stored_callbacks(record.id)
        with self._lock:
            event = self._cancel.get(record.id)
            if event is not None and record.id in self._running:
                self._delete_after_cancel.add(record.id)
                self._set(record.id, callbacks, status=Status.DELETING,
                          activity="Cancelling the build")
                event.set()
                return
            if event is not None:
                event.set()
                self._cancel.pop(record.id, None)
                self._drop_waiting(record.id)
            self.store.remove_files(record.id)
            self._set(record.id, callbacks, status=Status.DELETED, activity="Deleted")

    def _stored_callbacks(self, image_id: str) -> list[str]:
        """The image's callback URLs, so deletions are reported like every status change."""
        try:
            return list(self.store.secrets(image_id).get("callbacks", []))
        except BuildError:  # secrets that cannot be unsealed must not block a delete
            return []

    def _drop_waiting(self, image_id: str) -> None:
        for jobs in self._waiting.values():
            jobs[:] = [j for j in jobs if j.image_id != image_id]

    def delete_provider(self, record: ImageRecord, secrets: JobSecrets) -> None:
        """Delete a provider image from its cloud (asynchronously), cancelling a push first."""
        callbacks = secrets.callbacks = self._stored_callbacks(record.id)
        with self._lock:
            if self.store.get(record.id).status is Status.DELETING:
                return  # already being deleted: cancelling that job would leave it on the cloud
            event = self._cancel.get(record.id)
            if event is not None:  # still queued or pushing: the push cleans up after itself
                if record.id in self._running:
                    self._delete_after_cancel.add(record.id)
                    self._set(record.id, callbacks, status=Status.DELETING,
                              activity="Cancelling the push")
                    event.set()
                    return
                event.set()
                self._cancel.pop(record.id, None)
                self._drop_waiting(record.id)
                self._set(record.id, callbacks, status=Status.DELETED, activity="Deleted")
                return
            if not record.identifier_on_provider:
                self._set(record.id, callbacks, status=Status.DELETED,
                          activity="Deleted (it was never on the provider)")
                return
            if not secrets.credentials:
                raise InvalidRequest(
                    f"provider image {record.id} is on {record.target} as "
                    f"{record.identifier_on_provider}: give 'credentials' (and 'provider', "
                    "'target') to delete it there"
                )
            self._cancel[record.id] = threading.Event()
            self._set(record.id, callbacks, status=Status.DELETING,
                      activity="Queued for deletion")
            self._uploads.submit(self._execute, Job(record.id, record.kind, "delete", None,
                                                    secrets))

    # -- lifecycle ------------------------------------------------------------------------------
    def recover(self) -> None:
        """Re-queue builds a previous process left unfinished; fail what cannot resume."""
        for record in self.store.with_status([Status.NEW, Status.PENDING, Status.BUILDING,
                                              Status.DELETING]):
            remove_tree(self.config.work_dir / record.id)  # what the interrupted run left
            unreadable = None
            try:
                secrets = self.store.secrets(record.id)
            except BuildError as exc:  # the sealing key changed: not a reason to stay down
                secrets, unreadable = {}, str(exc)
            job_secrets = JobSecrets(template=secrets.get("template"),
                                     callbacks=secrets.get("callbacks", []))
            if record.status is Status.DELETING:
                if record.kind is ImageKind.PROVIDER:
                    self._set(record.id, job_secrets.callbacks, status=Status.DELETEFAILED,
                              error="the service restarted during the delete; DELETE again "
                                    "with credentials", activity="Delete interrupted")
                else:
                    self.store.remove_files(record.id)
                    self._set(record.id, job_secrets.callbacks, status=Status.DELETED,
                              activity="Deleted")
                continue
            if record.kind is ImageKind.PROVIDER:
                self.store.append_log(record.id, f"FAILED: {PUSH_INTERRUPTED}")
                self._set(record.id, job_secrets.callbacks, status=Status.FAILED,
                          error=PUSH_INTERRUPTED, activity="Push interrupted")
                continue
            self.store.remove_files(record.id)
            if unreadable:
                self.store.append_log(record.id, f"FAILED: {unreadable}")
                self._set(record.id, [], status=Status.FAILED, error=unreadable,
                          activity="Cannot resume")
                continue
            self.store.append_log(record.id, f"== {RESTARTED}")
            record = self.store.update(record.id, status=Status.NEW, percent_complete=0,
                                       activity=RESTARTED, error=None)
            self.submit(record, job_secrets)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel running jobs (recorded FAILED, saying so); queued ones stay PENDING and are
        re-queued by the next start's `recover`."""
        with self._lock:
            self._stopping = True
            for image_id in self._running:
                self._cancel[image_id].set()
        for pool in (self._local, self._uploads):
            pool.shutdown(wait=False, cancel_futures=True)
        done = threading.Event()

        def wait_all() -> None:
            self._local.shutdown(wait=True)
            self._uploads.shutdown(wait=True)
            done.set()

        threading.Thread(target=wait_all, daemon=True).start()
        if not done.wait(timeout):
            log.error("builds did not stop within %.0f s", timeout)
        self.notifier.drain()
