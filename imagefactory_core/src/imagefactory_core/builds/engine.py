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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..config import Config
from ..context import BuildContext
from ..errors import BuildCancelled, BuildError, Conflict, InvalidRequest
from ..model import ImageKind, ImageRecord, Outcome, Status
from ..plugins import PluginHost
from ..representation import full
from ..statelock import StateLock
from ..store import ImageStore
from .callbacks import CallbackNotifier
from .job import Job, Plan
from .work import Work, remove_tree

log = logging.getLogger(__name__)

RESTARTED = "re-queued: the service restarted during the build"
PUSH_INTERRUPTED = ("the service restarted during the push; credentials are never stored, so "
                    "it cannot resume: POST the provider image again")
STOPPED = "cancelled: the service was stopped during the build; POST the image again"


class BuildEngine:
    def __init__(self, store: ImageStore, plugins: PluginHost, config: Config,
                 notifier: CallbackNotifier | None = None):
        self.state_lock = StateLock(Path(config.state_dir))  # before any record is touched
        self.store = store
        self.plugins = plugins
        self.config = config
        self.work = Work(store, plugins)
        self.sandbox_settings = config.sandbox_settings()  # checked once, at start-up
        self.notifier = notifier or CallbackNotifier(config.callback_timeout,
                                                     config.callback_retries,
                                                     config.outbound_allow)
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
    def submit(self, record: ImageRecord, job: Job) -> None:
        """Queue the build (or push) of a NEW image; it waits for its parent if needed."""
        with self._lock:
            self._cancel[record.id] = threading.Event()
            self._set(record.id, job.plan.callbacks, status=Status.PENDING,
                      activity="Queued" if job.parent_id is None
                      else f"Waiting for image {job.parent_id}")
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
        self.store.append_log(job.image_id, f"FAILED: {reason}")  # the evidence, then the verdict
        self._set(job.image_id, job.plan.callbacks, status=Status.FAILED, error=reason,
                  activity="Parent image did not complete")
        for child in self._waiting.pop(job.image_id, []):
            self._fail_cascade(child, f"{job.kind.value} {job.image_id} FAILED: {reason}")

    def _release_children(self, image_id: str) -> None:
        with self._lock:
            for child in self._waiting.pop(image_id, []):
                self._schedule(child)

    # -- execution ------------------------------------------------------------------------------
    def _context(self, record: ImageRecord, event: threading.Event) -> BuildContext:
        workdir = self.config.work_dir / record.id
        workdir.mkdir(parents=True, exist_ok=True)
        return BuildContext(
            image_id=record.id,
            workdir=workdir,
            body_path=record.body_path,
            cache_root=self.config.cache_dir,
            progress_sink=lambda percent, activity: self.store.set_progress(record.id, percent,
                                                                            activity),
            log_sink=lambda line: self.store.append_log(record.id, line),
            cancel_event=event,
            sandbox_settings=self.sandbox_settings,
        )

    def _execute(self, job: Job) -> None:
        with self._lock:
            event = self._cancel.get(job.image_id)
            if event is None or event.is_set() or self._stopping:
                return
            self._running.add(job.image_id)
        outcome: Outcome | None = None
        ctx: BuildContext | None = None
        try:
            record = self.store.get(job.image_id)
            ctx = self._context(record, event)
            deleting = job.action == "delete"
            self._set(record.id, job.plan.callbacks,
                      status=Status.DELETING if deleting else Status.BUILDING,
                      activity="Starting")
            outcome = self.work.run(job, record, ctx)
        except BuildCancelled:
            outcome = self._cancelled_outcome(job)
        except (BuildError, InvalidRequest) as exc:
            outcome = self._failed_outcome(job, ctx, str(exc))
        except Exception as exc:  # a plugin bug: keep the service up, keep the traceback
            if ctx is not None:
                ctx.log(traceback.format_exc())
            outcome = self._failed_outcome(job, ctx,
                                           f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if ctx is not None:
                remove_tree(ctx.workdir)
            if outcome is None:  # a BaseException that is not an Exception: still final
                outcome = self._failed_outcome(job, ctx, "the worker was interrupted")
            self._finish(job, outcome)

    def _failed_outcome(self, job: Job, ctx: BuildContext | None, message: str) -> Outcome:
        shown = ctx.redact(message) if ctx is not None else message
        if ctx is not None:
            ctx.log(f"FAILED: {shown}")
        else:
            self.store.append_log(job.image_id, f"FAILED: {shown}")
        if job.action == "delete":
            return Outcome(Status.DELETEFAILED, "Delete failed", error=shown)
        self.store.remove_files(job.image_id)
        return Outcome(Status.FAILED, "Failed", error=shown)

    def _cancelled_outcome(self, job: Job) -> Outcome:
        if job.action == "delete":
            return Outcome(Status.DELETEFAILED, "Cancelled", error=STOPPED)
        self.store.remove_files(job.image_id)
        if job.image_id in self._delete_after_cancel:
            return Outcome(Status.DELETED, "Cancelled and deleted")
        if self._stopping:
            return Outcome(Status.FAILED, "Cancelled", error=STOPPED)
        return Outcome(Status.FAILED, "Cancelled", error="cancelled")

    def _finish(self, job: Job, outcome: Outcome) -> None:
        with self._lock:
            # log first: a follower of the log stops once it sees the final status
            self.store.append_log(job.image_id, f"== {outcome.status.value}")
            record = self.store.finish(job.image_id, outcome)
            if job.plan.callbacks:
                self.notifier.notify(job.plan.callbacks, full(self._base_url(), record))
            self._running.discard(job.image_id)
            self._cancel.pop(job.image_id, None)
            self._delete_after_cancel.discard(job.image_id)
            if outcome.status is Status.COMPLETE:
                self._release_children(job.image_id)
            else:
                reason = outcome.error or outcome.status.value.lower()
                for child in self._waiting.pop(job.image_id, []):
                    self._fail_cascade(child, f"{job.kind.value} {job.image_id} "
                                              f"{outcome.status.value}: {reason}")

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
            return Plan.from_json(self.store.sealed(image_id)).callbacks
        except BuildError:  # a plan that cannot be unsealed must not block a delete
            return []

    def _drop_waiting(self, image_id: str) -> None:
        for jobs in self._waiting.values():
            jobs[:] = [j for j in jobs if j.image_id != image_id]

    def delete_provider(self, record: ImageRecord, provider: str | dict[str, Any] | None,
                        credentials: dict[str, Any] | None) -> None:
        """Delete a provider image from its cloud (asynchronously), cancelling a push first.

        The delete uses the plan of the push (its cloud plugin and parameters); `provider` from
        the request, when given, replaces the push's."""
        callbacks = self._stored_callbacks(record.id)
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
            if not credentials:
                raise InvalidRequest(
                    f"provider image {record.id} is on {record.target} as "
                    f"{record.identifier_on_provider}: give 'credentials' (and 'provider', "
                    "'target') to delete it there"
                )
            plan = Plan.from_json(self.store.sealed(record.id))
            plan.provider = provider or plan.provider
            self._cancel[record.id] = threading.Event()
            self._set(record.id, callbacks, status=Status.DELETING,
                      activity="Queued for deletion")
            self._uploads.submit(self._execute, Job(record.id, record.kind, "delete", None,
                                                    plan, credentials))

    # -- lifecycle ------------------------------------------------------------------------------
    def recover(self) -> None:
        """Re-queue builds a previous process left unfinished; fail what cannot resume."""
        for record in self.store.with_status([Status.NEW, Status.PENDING, Status.BUILDING,
                                              Status.DELETING]):
            remove_tree(self.config.work_dir / record.id)  # what the interrupted run left
            unreadable = None
            try:
                plan = Plan.from_json(self.store.sealed(record.id))
            except BuildError as exc:  # the sealing key changed: not a reason to stay down
                plan, unreadable = Plan(), str(exc)
            if record.status is Status.DELETING:
                if record.kind is ImageKind.PROVIDER:
                    self._set(record.id, plan.callbacks, status=Status.DELETEFAILED,
                              error="the service restarted during the delete; DELETE again "
                                    "with credentials", activity="Delete interrupted")
                else:
                    self.store.remove_files(record.id)
                    self._set(record.id, plan.callbacks, status=Status.DELETED,
                              activity="Deleted")
                continue
            if record.kind is ImageKind.PROVIDER:
                self.store.append_log(record.id, f"FAILED: {PUSH_INTERRUPTED}")
                self._set(record.id, plan.callbacks, status=Status.FAILED,
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
            parent = record.target_image_id or record.base_image_id
            self.submit(record, Job(record.id, record.kind, "build", parent, plan))

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
        self.state_lock.release()
