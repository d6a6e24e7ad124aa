"""The build engine: bounded worker pools, cascades, cancellation, restart recovery.

Local work (base and target builds) runs on a pool of `max_concurrent_local_sessions` threads;
pushes and provider deletes on a separate pool of `max_concurrent_uploads`, so a long upload
never blocks a build. Heavy lifting happens in plugin subprocesses, so threads suffice.

A job whose parent image is not COMPLETE yet waits (PENDING) and is queued when the parent
completes, or failed with the parent's reason when the parent fails.

Several services may share one database (PostgreSQL): each is an instance (`store.instances`)
that beats a heartbeat, recovers only what is its own or a dead service's, settles jobs
waiting for a parent another service builds by looking at the parent's status on each beat,
and refuses to delete an image another live service is building.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import Config
from ..context import BuildContext
from ..errors import BuildCancelled, BuildError, Conflict, InvalidRequest
from ..model import ImageKind, ImageRecord, Outcome, Status
from ..plugins import PluginHost
from ..representation import full
from ..statelock import StateLock
from ..store import ImageStore, Instance, Instances
from ..store.instances import HEARTBEAT_SECONDS
from .callbacks import CallbackNotifier
from .deletion import busy_children, settled_without_cloud
from .job import Job, Plan
from .work import Work, remove_tree

log = logging.getLogger(__name__)

RESTARTED = "re-queued: the service or build worker stopped during the build"
PUSH_INTERRUPTED = ("the service or build worker stopped during the push, which is not run "
                    "again (it may have left part of an image on the cloud): POST the provider "
                    "image again")
DELETE_INTERRUPTED = ("the service or build worker stopped during the delete; DELETE again "
                      "with credentials")
NOT_RESUMED = ("the command that started it stopped before it finished (local mode builds only "
               "while their command runs); run the command again")
STOPPED = "cancelled: the service was stopped during the build; POST the image again"
ABANDONED = ("the service was stopped and the plugin did not stop within {seconds:.0f} s (it "
             "ignored the cancellation); {again}")
END_ATTEMPTS = 3  # writes of a job's end after its first failed (a transiently busy database)
END_RETRY_PAUSE = 0.5  # seconds, times the attempt number


class BuildEngine:
    def __init__(self, store: ImageStore, plugins: PluginHost, config: Config,
                 notifier: CallbackNotifier | None = None,
                 on_end: Callable[[Job, Outcome], None] | None = None,
                 state_lock: StateLock | None = None):
        """`on_end` hears every job's recorded end (a build worker deletes its queue row);
        `state_lock`: the state directory's, when the caller holds it already."""
        # before any record is touched
        self.state_lock = state_lock or StateLock(Path(config.state_dir))
        if store.owner is None:
            raise ValueError("the build engine needs a store that records its owner")
        self.instance = Instance(store.owner,
                                 f"{socket.gethostname()}:{Path(config.state_dir).resolve()}",
                                 os.getpid())
        self.instances = Instances(store.engine, config.worker_stale_seconds)
        try:
            self.instances.join(self.instance)
        except BaseException:
            self.state_lock.release()
            raise
        self.store = store
        self.plugins = plugins
        self.config = config
        self.work = Work(store, plugins)
        self.sandbox_settings = config.sandbox_settings()  # checked once, at start-up
        self.notifier = notifier or CallbackNotifier(config.callback_timeout,
                                                     config.callback_retries,
                                                     config.outbound_allow)
        self._on_end = on_end
        self._local = ThreadPoolExecutor(config.max_concurrent_local_sessions, "build")
        self._uploads = ThreadPoolExecutor(config.max_concurrent_uploads, "upload")
        self._lock = threading.RLock()
        self._cancel: dict[str, threading.Event] = {}
        self._running: dict[str, Job] = {}
        self._abandoned: set[str] = set()  # given up on at shutdown: a late end is not recorded
        self._delete_after_cancel: set[str] = set()
        self._waiting: dict[str, list[Job]] = defaultdict(list)
        self._stopping = False
        self._stop_beating = threading.Event()
        self._beating = threading.Thread(target=self._keep_beating, name="heartbeat",
                                         daemon=True)
        self._beating.start()

    # -- status changes -------------------------------------------------------------------------
    def _set(self, image_id: str, callbacks: list[str], **values: Any) -> ImageRecord:
        record = self.store.update(image_id, **values)
        if "status" in values:
            self._notify(callbacks, record)
        return record

    def _notify(self, callbacks: list[str], record: ImageRecord) -> None:
        """Tell the image's callbacks about its (already recorded) status. A failure here is
        logged, never a reason to change the status or to stop the job."""
        if not callbacks:
            return
        try:
            self.notifier.notify(callbacks, full(public_base_url(self.config), record))
        except Exception:
            log.exception("could not queue the status callbacks of image %s", record.id)


    # -- submission -----------------------------------------------------------------------------
    def submit(self, record: ImageRecord, job: Job) -> None:
        """Queue the build (or push) of a NEW image; it waits for its parent if needed."""
        with self._lock:
            self._cancel[record.id] = threading.Event()
            self._set(record.id, job.plan.callbacks, status=Status.PENDING,
                      activity="Queued" if job.parent_id is None
                      else f"Waiting for image {job.parent_id}")
            self._schedule_or_fail(job)

    def _schedule_or_fail(self, job: Job) -> None:
        """Schedule `job`; if even that fails, the image ends FAILED instead of PENDING."""
        try:
            self._schedule(job)
        except Exception as exc:
            log.exception("could not queue image %s", job.image_id)
            self._fail_cascade(job, f"internal error: it could not be queued: {_describe(exc)}")

    def _schedule(self, job: Job) -> None:
        with self._lock:
            if self._stopping:  # stays PENDING: the next start re-queues it
                return
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

    def run_now(self, job: Job) -> bool:
        """Run `job` and wait for its end: a build worker's slot claimed it from the queue
        once the image it waits for had ended (`builds.worker`). It runs on the engine's own
        pool, so `shutdown` cancels and waits for it as for any job. False when the engine
        is stopping and did not run it."""
        with self._lock:
            if self._stopping:
                return False
            self._cancel[job.image_id] = threading.Event()
        if job.parent_id is not None:
            parent = self.store.get(job.parent_id)
            if parent.status is not Status.COMPLETE:
                reason = parent.status_detail.error or parent.status.value.lower()
                self._fail_cascade(job, f"{parent.kind.value} {parent.id} "
                                        f"{parent.status.value}: {reason}")
                return True
        pool = self._uploads if job.kind is ImageKind.PROVIDER else self._local
        try:
            pool.submit(self._execute, job).result()
        except (CancelledError, RuntimeError):  # shut down before it started
            with self._lock:
                self._cancel.pop(job.image_id, None)
            return False
        return True

    def fail(self, job: Job, message: str) -> None:
        """Record a job FAILED (DELETEFAILED) without running it, saying `message`."""
        if job.action == "build":
            self.store.remove_files(job.image_id)
        self._record_end(job, self._failed_outcome(job, None, message))

    def record_end(self, job: Job, outcome: Outcome) -> None:
        """Record how a job that does not run ended (`builds.worker` decided it)."""
        self._record_end(job, outcome)

    def cancel_running(self, image_id: str, *, delete: bool, callbacks: Sequence[str]) -> None:
        """Stop a job this engine runs, as another process asked (a DELETE through another
        API process); with `delete`, the image ends DELETED. `callbacks` hear how it ends."""
        with self._lock:
            event = self._cancel.get(image_id)
            if event is None or event.is_set():
                return
            if delete:
                self._delete_after_cancel.add(image_id)
            if image_id in self._running and callbacks:
                self._hear_end(image_id, list(callbacks))
            event.set()

    def _fail_cascade(self, job: Job, reason: str) -> None:
        with self._lock:
            self._cancel.pop(job.image_id, None)
            failed = self._record_end(job, Outcome(Status.FAILED, "Parent image did not complete",
                                                   error=reason))
            self._settle_children(job, failed)

    def _settle_children(self, job: Job, outcome: Outcome) -> None:
        """Queue the jobs waiting for `job`'s image when it completed; else fail them, naming
        it. One child that cannot be queued fails alone."""
        children = self._waiting.pop(job.image_id, [])
        for child in children:
            if outcome.status is Status.COMPLETE:
                self._schedule_or_fail(child)
            else:
                reason = outcome.error or outcome.status.value.lower()
                self._fail_cascade(child, f"{job.kind.value} {job.image_id} "
                                          f"{outcome.status.value}: {reason}")

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
            outbound=self.config.outbound_policy(),
        )

    def _execute(self, job: Job) -> None:
        """Run one job on a worker thread. Whatever raises — the plugin, the store, the work
        directory, the callbacks — the image ends with a final status and the thread is free
        for the next job: nothing stays BUILDING or DELETING until a restart."""
        with self._lock:
            event = self._cancel.get(job.image_id)
            if event is None or event.is_set() or self._stopping:
                return
            self._running[job.image_id] = job
        ctx: BuildContext | None = None
        interrupted: BaseException | None = None
        try:
            self.store.logs.open(job.image_id)  # copied to storage while the job runs
            record = self.store.get(job.image_id)
            ctx = self._context(record, event)
            outcome = self._outcome(job, record, ctx)
        except Exception as exc:  # the core's own step failed (the store, the work directory)
            log.exception("%s of image %s failed outside the plugin", job.action, job.image_id)
            outcome = self._failed_outcome(job, ctx, f"internal error: {_describe(exc)}")
        except BaseException as exc:  # not an Exception (SystemExit…): still recorded, re-raised
            interrupted = exc
            outcome = self._failed_outcome(job, ctx, "the worker was interrupted")
        if ctx is not None:
            self._remove_workdir(ctx.workdir)
        self._conclude(job, outcome)
        try:
            self.store.logs.close(job.image_id)
        except Exception:  # the log is in storage up to its last upload; the job has ended
            log.exception("could not close the build log of image %s", job.image_id)
        if interrupted is not None:
            raise interrupted

    def _outcome(self, job: Job, record: ImageRecord, ctx: BuildContext) -> Outcome:
        """Do the job's work; how a plugin fails becomes the outcome."""
        try:
            self._set(record.id, job.plan.callbacks,
                      status=Status.DELETING if job.action == "delete" else Status.BUILDING,
                      activity="Starting")
            return self.work.run(job, record, ctx)
        except BuildCancelled:
            return self._cancelled_outcome(job)
        except (BuildError, InvalidRequest) as exc:
            return self._failed_outcome(job, ctx, _message(exc))
        except Exception as exc:  # a plugin bug: keep the service up, keep the traceback
            try:
                ctx.log(traceback.format_exc())
            except Exception:  # the log itself is broken: `_record_end` reports that
                log.warning("could not write the traceback into the log of %s", job.image_id)
            return self._failed_outcome(job, ctx, f"internal error: {_describe(exc)}")

    def _remove_workdir(self, workdir: Path) -> None:
        try:
            remove_tree(workdir)
        except Exception:  # leftovers cost disk space, not correctness: the job still ends
            log.exception("could not remove the work directory %s", workdir)

    @staticmethod
    def _failed_outcome(job: Job, ctx: BuildContext | None, message: str) -> Outcome:
        shown = ctx.redact(message) if ctx is not None else message
        if job.action == "delete":
            return Outcome(Status.DELETEFAILED, "Delete failed", error=shown)
        return Outcome(Status.FAILED, "Failed", error=shown)

    def _cancelled_outcome(self, job: Job) -> Outcome:
        if job.action == "delete":
            return Outcome(Status.DELETEFAILED, "Cancelled", error=STOPPED)
        if job.image_id in self._delete_after_cancel:
            return Outcome(Status.DELETED, "Cancelled and deleted")
        if self._stopping:
            return Outcome(Status.FAILED, "Cancelled", error=STOPPED)
        return Outcome(Status.FAILED, "Cancelled", error="cancelled")

    def _conclude(self, job: Job, outcome: Outcome, *, abandoning: bool = False) -> None:
        """Record how a job ended, release what it held and settle the jobs waiting for it.
        Never raises: what fails is logged, and the image still ends final."""
        with self._lock:  # a DELETE arriving now sees the job either running or ended
            if job.image_id in self._abandoned and not abandoning:
                log.warning("image %s ended %s after shutdown gave up on it: not recorded",
                            job.image_id, outcome.status.value)
                return
            if job.action == "build" and outcome.status is not Status.COMPLETE:
                try:  # a failed or cancelled build keeps no half-written body
                    self.store.remove_files(job.image_id)
                except Exception:
                    log.exception("could not remove the body of image %s", job.image_id)
            try:
                outcome = self._record_end(job, outcome)
            finally:
                self._running.pop(job.image_id, None)
                self._cancel.pop(job.image_id, None)
                self._delete_after_cancel.discard(job.image_id)
            self._settle_children(job, outcome)

    def _record_end(self, job: Job, outcome: Outcome) -> Outcome:
        """Write `outcome` (its evidence in the log, then the verdict); return what was
        recorded. If the outcome cannot be stored (a plugin's result the database refuses, a
        store error), the image is FAILED (DELETEFAILED) saying why, retried a few times."""
        try:
            self._write_end(job, outcome)
            self._ended(job, outcome)
            return outcome
        except Exception as exc:
            log.exception("could not record that image %s is %s", job.image_id,
                          outcome.status.value)
            outcome = self._failed_outcome(job, None, "internal error: the result could not "
                                                      f"be recorded: {_describe(exc)}")
        for attempt in range(1, END_ATTEMPTS + 1):
            try:
                self._write_end(job, outcome)
                self._ended(job, outcome)
                return outcome
            except Exception:
                log.exception("attempt %d of %d to record that image %s is %s failed",
                              attempt, END_ATTEMPTS, job.image_id, outcome.status.value)
                if attempt < END_ATTEMPTS:
                    time.sleep(END_RETRY_PAUSE * attempt)
        log.error("image %s keeps its last recorded status until the service restarts",
                  job.image_id)
        return outcome

    def _ended(self, job: Job, outcome: Outcome) -> None:
        """Tell `on_end`; what it fails at is logged (the end is recorded already)."""
        if self._on_end is None:
            return
        try:
            self._on_end(job, outcome)
        except Exception:
            log.exception("the end of image %s's job could not be handed on", job.image_id)

    def _write_end(self, job: Job, outcome: Outcome) -> None:
        """The evidence, then the verdict: a follower of the log stops once it sees the final
        status, so the lines saying why come first. A log that cannot be written does not
        stop the status from being recorded."""
        lines = [f"== {outcome.status.value}"]
        if outcome.error and outcome.status in (Status.FAILED, Status.DELETEFAILED):
            lines.insert(0, f"FAILED: {outcome.error}")
        try:
            for line in lines:
                self.store.append_log(job.image_id, line, closing=True)
        except Exception:
            log.exception("could not write the end of the build log of image %s",
                          job.image_id)
        record = self.store.finish(job.image_id, outcome)
        self._notify(job.plan.callbacks, record)

    # -- deletion -------------------------------------------------------------------------------
    def delete_local(self, record: ImageRecord, callbacks: Sequence[str] = ()) -> None:
        """Delete a base or target image; a build in progress is cancelled first. `callbacks`
        (the DELETE's own) hear the deletion beside the image's."""
        busy_children(self.store, record)
        callbacks = self._delete_callbacks(record.id, callbacks)
        with self._lock:
            event = self._cancel.get(record.id)
            if event is not None and record.id in self._running:
                self._delete_after_cancel.add(record.id)
                self._hear_end(record.id, callbacks)
                self._set(record.id, callbacks, status=Status.DELETING,
                          activity="Cancelling the build")
                event.set()
                return
            if event is not None:
                event.set()
                self._cancel.pop(record.id, None)
                self._drop_waiting(record.id)
            else:
                self._refuse_if_elsewhere(record)
            self.store.remove_files(record.id)
            self._set(record.id, callbacks, status=Status.DELETED, activity="Deleted")

    def _delete_callbacks(self, image_id: str, extra: Sequence[str]) -> list[str]:
        """The image's callbacks and a DELETE's own, each URL once."""
        return list(dict.fromkeys([*self._stored_callbacks(image_id), *extra]))

    def _hear_end(self, image_id: str, callbacks: list[str]) -> None:
        """Let `callbacks` hear how the running job of `image_id` ends (its job alone: a plan
        may be shared by the jobs of one request)."""
        job = self._running[image_id]
        job.plan = replace(job.plan, callbacks=callbacks)

    def _stored_callbacks(self, image_id: str) -> list[str]:
        """The image's callback URLs, so deletions are reported like every status change."""
        try:
            return Plan.from_json(self.store.sealed(image_id)).callbacks
        except BuildError:  # a plan that cannot be unsealed must not block a delete
            return []

    def _refuse_if_elsewhere(self, record: ImageRecord) -> None:
        """Refuse (409) to delete an image another live service is building or pushing: only
        that service can stop its job, which would otherwise end after the deletion and
        record the image COMPLETE again."""
        holder = self.instances.holder(record.id)
        if holder is not None and holder.id != self.instance.id:
            raise Conflict(f"{record.kind.value} {record.id} is being worked on by another "
                           f"service of this database ({holder}): DELETE it through that "
                           "service, or once its status is final")

    def _drop_waiting(self, image_id: str) -> None:
        for jobs in self._waiting.values():
            jobs[:] = [j for j in jobs if j.image_id != image_id]

    def delete_provider(self, record: ImageRecord, provider: str | dict[str, Any] | None,
                        credentials: dict[str, Any] | None, callbacks: Sequence[str] = (), *,
                        forget: bool = False) -> None:
        """Delete a provider image from its cloud (asynchronously), cancelling a push first.

        The delete uses the plan of the push (its cloud plugin and parameters); `provider` from
        the request, when given, replaces the push's. Without credentials, an image on its
        cloud is refused, or with `forget` (a DELETE that names no cloud) forgotten: recorded
        DELETED and left on the cloud, as the seed's body-less DELETE does. `callbacks` (the
        DELETE's own) hear the deletion beside the image's."""
        callbacks = self._delete_callbacks(record.id, callbacks)
        with self._lock:
            record = self.store.get(record.id)  # as of now: a push may have ended meanwhile
            if record.status is Status.DELETING:
                return  # already being deleted: cancelling that job would leave it on the cloud
            event = self._cancel.get(record.id)
            if event is not None:  # still queued or pushing: the push cleans up after itself
                if record.id in self._running:
                    self._delete_after_cancel.add(record.id)
                    self._hear_end(record.id, callbacks)
                    self._set(record.id, callbacks, status=Status.DELETING,
                              activity="Cancelling the push")
                    event.set()
                    return
                event.set()
                self._cancel.pop(record.id, None)
                self._drop_waiting(record.id)
                self._set(record.id, callbacks, status=Status.DELETED, activity="Deleted")
                return
            self._refuse_if_elsewhere(record)
            if settled_without_cloud(self.store, record, credentials, forget,
                                     lambda **values: self._set(record.id, callbacks,
                                                                **values)):
                return
            plan = Plan.from_json(self.store.sealed(record.id))
            plan.provider = provider or plan.provider
            plan.callbacks = callbacks
            self._cancel[record.id] = threading.Event()
            self._set(record.id, callbacks, status=Status.DELETING,
                      activity="Queued for deletion")
            self._uploads.submit(self._execute, Job(record.id, record.kind, "delete", None,
                                                    plan, credentials))

    # -- lifecycle ------------------------------------------------------------------------------
    def recover(self, resume: bool = True) -> None:
        """Re-queue builds a previous process left unfinished; fail what cannot resume.

        Base and target images resume from scratch (their plan is sealed in the record) and
        end COMPLETE as if never interrupted; a push cannot resume (credentials are never
        stored) and ends FAILED, a provider delete DELETEFAILED, both saying what to do; a
        base or target delete finishes. One record that cannot be recovered is FAILED alone.
        Without `resume` (the CLI's local mode: a command that lists images must not start a
        build it would cancel on exit), unfinished builds end FAILED, saying why.

        Only the images this service may claim are touched: its own, those of no service, and
        those of a service that stopped or whose heartbeat is stale (`store.instances`); the
        builds of another live service on the same database are its own business."""
        claimed = self.instances.claim_unfinished(self.instance.id)
        for record in [self.store.get(image_id) for image_id in claimed]:
            try:
                self._recover(record, resume)
            except Exception as exc:
                log.exception("could not recover image %s", record.id)
                job = Job(record.id, record.kind,
                          "delete" if record.status is Status.DELETING else "build", None, Plan())
                self._record_end(job, self._failed_outcome(
                    job, None, f"internal error: it could not be recovered: {_describe(exc)}"))

    def _recover(self, record: ImageRecord, resume: bool) -> None:
        remove_tree(self.config.work_dir / record.id)  # what the interrupted run left
        unreadable = None
        try:
            plan = Plan.from_json(self.store.sealed(record.id))
        except BuildError as exc:  # the sealing key changed: not a reason to stay down
            plan, unreadable = Plan(), str(exc)
        deleting = record.status is Status.DELETING
        job = Job(record.id, record.kind, "delete" if deleting else "build", None, plan)
        if record.kind is ImageKind.PROVIDER:
            self._record_end(job, interrupted_outcome(job))
        elif deleting:
            self.store.remove_files(record.id)
            self._set(record.id, plan.callbacks, status=Status.DELETED, activity="Deleted")
        elif unreadable or not resume:
            self.store.remove_files(record.id)
            self._record_end(job, Outcome(Status.FAILED, "Cannot resume",
                                          error=unreadable or NOT_RESUMED))
        else:
            self.store.remove_files(record.id)
            self.store.append_log(record.id, f"== {RESTARTED}")
            record = self.store.update(record.id, status=Status.NEW, percent_complete=0,
                                       activity=RESTARTED, error=None)
            parent = record.target_image_id or record.base_image_id
            self.submit(record, Job(record.id, record.kind, "build", parent, plan))

    def _keep_beating(self) -> None:
        """Until shutdown, every `HEARTBEAT_SECONDS`: say this service is alive, and settle
        the jobs waiting for images other services build. A database that does not answer
        is logged, and tried again at the next beat."""
        while not self._stop_beating.wait(HEARTBEAT_SECONDS):
            try:
                self.instances.beat(self.instance)
                self._settle_remote_parents()
            except Exception as exc:
                log.warning("heartbeat of %s failed: %s", self.instance, _describe(exc))

    def _settle_remote_parents(self) -> None:
        """Schedule again the jobs waiting for a parent no job of this engine builds (another
        service's): those whose parent has ended are queued or failed, the others wait on."""
        with self._lock:
            for parent_id in [p for p in self._waiting if p not in self._cancel]:
                for job in self._waiting.pop(parent_id):
                    self._schedule_or_fail(job)

    def _leave(self) -> None:
        """Stop beating and say so: what this service leaves unfinished (its queued jobs) may
        be recovered at once by a service starting on the same database."""
        self._stop_beating.set()
        self._beating.join(HEARTBEAT_SECONDS)
        try:
            self.instances.leave(self.instance)
        except Exception as exc:
            log.warning("could not record that %s stopped: %s", self.instance, _describe(exc))

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel running jobs (recorded FAILED, saying so); queued ones stay PENDING and are
        re-queued by the next start's `recover`."""
        with self._lock:
            self._stopping = True
            for image_id in self._running:
                event = self._cancel.get(image_id)
                if event is not None:
                    event.set()
        for pool in (self._local, self._uploads):
            pool.shutdown(wait=False, cancel_futures=True)
        done = threading.Event()

        def wait_all() -> None:
            self._local.shutdown(wait=True)
            self._uploads.shutdown(wait=True)
            done.set()

        threading.Thread(target=wait_all, daemon=True).start()
        if done.wait(timeout):
            self.notifier.drain()
            self._leave()
            self.state_lock.release()
            return
        stuck = self._abandon_running(timeout)
        self._leave()
        log.error("builds did not stop within %.0f s (%s recorded as such); the state "
                  "directory stays locked until this process exits", timeout, ", ".join(stuck))
        self.notifier.drain()

    def _abandon_running(self, waited: float) -> list[str]:
        """End the jobs whose plugin ignored the cancellation: their commands are killed, their
        work directories removed, and they are recorded FAILED (DELETEFAILED) saying so, so
        the next start does not run them into the same hang. Their threads still run: the
        state lock stays held until the process exits, and a late end is not recorded."""
        with self._lock:
            stuck = dict(self._running)
            self._abandoned.update(stuck)
        for image_id, job in stuck.items():
            self._remove_workdir(self.config.work_dir / image_id)
            again = "DELETE it again" if job.action == "delete" else "POST the image again"
            self._conclude(job, self._failed_outcome(job, None, ABANDONED.format(
                seconds=waited, again=again)), abandoning=True)
        return list(stuck)


def interrupted_outcome(job: Job) -> Outcome:
    """How a push or cloud delete whose run was cut short (its service or worker stopped)
    ends: neither runs again, as a half-done one may have left the cloud in a state only a
    person can judge."""
    if job.action == "delete":
        return Outcome(Status.DELETEFAILED, "Delete interrupted", error=DELETE_INTERRUPTED)
    return Outcome(Status.FAILED, "Push interrupted", error=PUSH_INTERRUPTED)


def public_base_url(config: Config) -> str:
    """The URL clients reach the service at, for the hrefs of callback bodies."""
    scheme = "http" if config.no_ssl else "https"
    host = "127.0.0.1" if config.address in ("0.0.0.0", "::") else config.address
    return config.public_url or f"{scheme}://{host}:{config.port}"


def _message(exc: BaseException) -> str:
    """`str(exc)`, even for an exception whose message cannot be made."""
    try:
        return str(exc)
    except Exception:
        return "(its message could not be read)"


def _describe(exc: BaseException) -> str:
    """``Type: message``, the message cut short (a store error can quote a whole row)."""
    message = _message(exc).split("\n", 1)[0]
    if len(message) > 300:
        message = message[:300] + "…"
    return f"{type(exc).__name__}: {message}"
