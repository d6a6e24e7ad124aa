"""A build worker: `imagefactory worker`, or the process `serve` starts beside its API.

It claims jobs from the queue (`builds.queues`, rows of `store.jobs`), runs each with a
`BuildEngine` (the same engine, sandboxes and plugins as in-process builds) and deletes the
row when the job has ended, telling the queue about the jobs that waited for it. Beside that,
a watcher thread:

* every `CANCEL_POLL_SECONDS`, stops the jobs an API process was asked to cancel or delete;
* every heartbeat, hands out again the jobs of workers whose heartbeat went stale (a worker
  SIGKILLed or its host gone): another worker claims them and they start again, as after a
  restart: a build starts from scratch (a job whose workers died `MAX_ATTEMPTS` times ends
  FAILED instead of taking down every worker in turn); a push or cloud delete ends FAILED
  (DELETEFAILED) saying to try again, as a half-done one may have left part of an image on
  the cloud;
* publishes again ready jobs the broker may not have: never published (it was away), or
  published `REPUBLISH_SECONDS` ago and still unclaimed (it lost them); a duplicate claims
  nothing;
* for the worker `serve` started (`parent_pid`), when `serve` has gone: stops taking jobs,
  lets the running ones finish, and exits, so a crash of the API loses no build.
"""

from __future__ import annotations

import logging
import os
import threading

from ..config import Config
from ..errors import BuildError, NotFound
from ..model import ImageKind, Outcome, Status
from ..plugins import PluginHost
from ..statelock import StateLock
from ..store import ImageStore
from ..store.instances import HEARTBEAT_SECONDS
from ..store.jobs import JobRow, Jobs
from .engine import RESTARTED, BuildEngine, interrupted_outcome
from .job import Job, Plan
from .queues import CeleryQueue, DatabaseQueue, JobQueue
from .work import remove_tree

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 1.0
SWEEP_SECONDS = 10.0  # how often the workers look for jobs the queue does not have
REPUBLISH_SECONDS = 300.0  # a job handed to the queue this long ago and unclaimed: again
MAX_ATTEMPTS = 3
GAVE_UP = ("the workers running it stopped {attempts} times (killed, or out of memory?); "
           "it is not tried again: see the workers' logs, then POST the image again")


class Worker:
    def __init__(self, config: Config, store: ImageStore, plugins: PluginHost, jobs: Jobs,
                 queue: JobQueue, parent_pid: int | None = None,
                 state_lock: StateLock | None = None):
        """`parent_pid`: the `serve` that started this worker, whose end it follows;
        `state_lock`: the state directory's, which that `serve` holds and handed on."""
        self.config = config
        self.store = store
        self.jobs = jobs
        self.queue = queue
        self.engine = BuildEngine(store, plugins, config, on_end=self._ended,
                                  state_lock=state_lock)
        self.id = self.engine.instance.id
        self.plugins = (frozenset(config.worker_plugins)
                        or frozenset(info.id for info in plugins.loaded()))
        self.parent_pid = parent_pid
        self._stop = threading.Event()
        self._shutting_down = threading.Lock()
        self._shut_down = False

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> None:
        """Take back what this worker's previous run held, recover what no queue holds (builds
        of an in-process service before), then run jobs until `stop`."""
        for image_id in self.jobs.release_all(self.id):
            log.info("image %s: its job was this worker's when it stopped; queued again",
                     image_id)
            self._publish(image_id)
        self.engine.recover()
        log.info("build worker %s takes jobs of %s (%d build and %d upload slots)",
                 self.engine.instance, ", ".join(sorted(self.plugins)) or "no plugin",
                 self.config.max_concurrent_local_sessions, self.config.max_concurrent_uploads)
        watcher = threading.Thread(target=self._watch, name="worker-watch", daemon=True)
        watcher.start()
        try:
            self.queue.consume(self.take, self.id, self.plugins, self._stop, self.stop)
        finally:
            self._stop.set()
            self._shutdown_engine()
            self.queue.close()

    def stop(self, *, cancel_running: bool = True) -> None:
        """Stop taking jobs; with `cancel_running` also cancel the running ones (they end
        FAILED saying the service stopped), else let them finish."""
        self._stop.set()
        if cancel_running:
            self._shutdown_engine()

    def _shutdown_engine(self) -> None:
        """Shut the engine down once: a stop signal and the end of `run` both ask for it, and
        a second shutdown running beside the first would give up on stuck jobs twice."""
        with self._shutting_down:
            if not self._shut_down:
                self._shut_down = True
                self.engine.shutdown()

    def take(self, row: JobRow) -> None:
        """Run a job this worker claimed, to its end; give it back if it cannot start now."""
        try:
            job = self._job(row)
        except Exception as exc:
            log.exception("image %s: its job cannot be read", row.image_id)
            self.engine.fail(Job(row.image_id, ImageKind.BASE, row.action, None, Plan()),
                             f"internal error: the queued job cannot be read: {exc}")
            self.jobs.done(row.image_id, self.id)
            return
        if job is None:
            self.jobs.done(row.image_id, self.id)
        elif not self.engine.run_now(job):
            self.jobs.release(row.image_id, self.id)

    def _job(self, row: JobRow) -> Job | None:
        """The engine's job for a claimed row; None when its image no longer needs it (ended,
        deleted meanwhile). A job tried before (its worker died) starts again clean."""
        try:
            record = self.store.get(row.image_id)
        except NotFound:
            return None
        if row.unreadable:
            raise BuildError(row.unreadable)
        plan = Plan.from_json(self.store.sealed(row.image_id))
        credentials = row.payload.get("credentials")
        if row.action == "delete":
            if record.status is not Status.DELETING:
                return None
            plan.provider = row.payload.get("provider") or plan.provider
            plan.callbacks = list(row.payload.get("callbacks") or plan.callbacks)
            job = Job(record.id, record.kind, "delete", None, plan, credentials)
        elif record.status.active or record.status is Status.DELETING:
            job = Job(record.id, record.kind, "build", row.parent_id, plan, credentials)
        else:
            return None
        if job.action == "build" and record.status is Status.DELETING:
            # a DELETE asked the worker running it to stop it, and that worker stopped first
            remove_tree(self.config.work_dir / record.id)
            self.engine.record_end(job, Outcome(Status.DELETED, "Cancelled and deleted"))
            return None
        if row.attempts == 1 and record.status is not Status.BUILDING:
            return job
        # tried before: its worker stopped (or this one, before it restarted), maybe leaving
        # commands running and a work directory here
        remove_tree(self.config.work_dir / record.id)
        if record.kind is ImageKind.PROVIDER:
            self.engine.record_end(job, interrupted_outcome(job))
            return None
        if row.attempts > MAX_ATTEMPTS:
            self.engine.fail(job, GAVE_UP.format(attempts=row.attempts - 1))
            return None
        if job.action == "build":
            self.store.remove_files(record.id)
            self.store.append_log(record.id, f"== {RESTARTED}")
            self.store.update(record.id, status=Status.PENDING, percent_complete=0,
                              activity=RESTARTED, error=None)
        return job

    def _ended(self, job: Job, outcome: Outcome) -> None:
        """A job's end is recorded: its row goes, and the jobs that waited for it are ready."""
        self.jobs.done(job.image_id, self.id)
        for row in self.jobs.waiting_for(job.image_id):
            self._publish(row.image_id)

    def _publish(self, image_id: str) -> None:
        row = self.jobs.get(image_id)
        if row is None:
            return
        try:
            self.queue.publish(row)
            self.jobs.mark_published(image_id)
        except Exception as exc:  # the sweep tries again
            log.warning("could not publish the job of image %s: %s", image_id, exc)

    # -- watching --------------------------------------------------------------------------------
    def _watch(self) -> None:
        beats = max(1, round(HEARTBEAT_SECONDS / CANCEL_POLL_SECONDS))
        sweeps = max(1, round(SWEEP_SECONDS / CANCEL_POLL_SECONDS))
        tick = 0
        while not self._stop.wait(CANCEL_POLL_SECONDS):
            tick += 1
            try:
                self._cancel_requested()
                if tick % beats == 0:
                    for image_id in self.jobs.release_dead(self.id):
                        log.warning("image %s: the worker running it stopped answering; "
                                    "queued again", image_id)
                        self._publish(image_id)
                if tick % sweeps == 0:
                    for row in self.jobs.unpublished(SWEEP_SECONDS, REPUBLISH_SECONDS):
                        log.info("image %s: its job is not claimed yet; handing it to the "
                                 "queue again (was the broker away?)", row.image_id)
                        self.queue.publish(row)
            except Exception as exc:  # the database is away: look again at the next tick
                log.warning("build worker %s: %s", self.id, exc)
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                log.warning("the service that started this worker is gone: finishing the "
                            "running jobs, then stopping")
                self.stop(cancel_running=False)

    def _cancel_requested(self) -> None:
        for row in self.jobs.cancels(self.id):
            self.engine.cancel_running(row.image_id, delete=row.cancel == "delete",
                                       callbacks=row.payload.get("cancel_callbacks") or [])


def open_queue(config: Config, jobs: Jobs) -> JobQueue:
    """The queue `config` names: Celery on `queue_url`, else the database."""
    slots = {"build": config.max_concurrent_local_sessions,
             "upload": config.max_concurrent_uploads}
    if config.queue_url:
        return CeleryQueue(config.queue_url, slots, jobs)
    return DatabaseQueue(jobs, slots)

