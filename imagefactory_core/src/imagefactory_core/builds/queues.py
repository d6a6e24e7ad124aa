"""How queued jobs reach build workers: the database itself (the default), or Celery.

Both carry the same thing — "the job of image X is ready" — for rows of `store.jobs`, which
stay the truth: a worker claims the row before running it, so a message delivered twice, late,
or after the job was cancelled runs nothing.

* `DatabaseQueue` (no `queue_url`): each worker's consumer threads, one per slot
  (`max_concurrent_local_sessions` for builds, `max_concurrent_uploads` for pushes and cloud
  deletes), claim the oldest ready row of their pool. Nothing to install; fits one host
  (SQLite) or a few (PostgreSQL).
* `CeleryQueue` (`queue_url`: ``redis://…`` or ``amqp://…``): the API publishes a task per
  ready job to the queue of the job's plugin (``imagefactory.<plugin>``); workers consume the
  queues of their plugins with late acknowledgement and one message prefetched per slot, so a
  message is acknowledged only once its job has ended, and a worker that dies holding it has
  it re-delivered. The database's claim decides who runs it.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..store.jobs import JobRow, Jobs, Pool

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # an idle database consumer looks for a ready job this often
TASK_NAME = "imagefactory.job"
# Redis re-delivers an unacknowledged message after this long. Builds can take hours, so a
# message is not re-delivered while its job runs; a dead worker's jobs are handed out again
# sooner by the workers' heartbeat check (`Worker`), and the late re-delivery then finds
# the job ended or claimed, and runs nothing.
VISIBILITY_SECONDS = 24 * 3600


class JobQueue(Protocol):
    def publish(self, row: JobRow) -> None:
        """Tell the workers that `row`'s job is ready."""

    def consume(self, take: Callable[[JobRow], None], worker_id: str,
                plugins: frozenset[str], stop: threading.Event,
                on_signal: Callable[[], None]) -> None:
        """Claim ready jobs of `plugins` for `worker_id` and run each with `take(row)`,
        until `stop` is set; blocks. `on_signal`: what a stop signal the queue's own
        machinery catches must do (cancel the running jobs)."""

    def close(self) -> None: ...


def queue_name(plugin: str) -> str:
    return f"imagefactory.{plugin}"


class DatabaseQueue:
    def __init__(self, jobs: Jobs, slots: dict[Pool, int]):
        self.jobs = jobs
        self.slots = slots

    def publish(self, row: JobRow) -> None:
        """Nothing to send: the row is what the consumers look for."""

    def consume(self, take: Callable[[JobRow], None], worker_id: str,
                plugins: frozenset[str], stop: threading.Event,
                on_signal: Callable[[], None]) -> None:
        threads = [threading.Thread(target=self._slot, args=(take, worker_id, pool, plugins,
                                                             stop),
                                    name=f"{pool}-{number}", daemon=True)
                   for pool, count in self.slots.items() for number in range(count)]
        for thread in threads:
            thread.start()
        stop.wait()
        for thread in threads:
            thread.join()

    def _slot(self, take: Callable[[JobRow], None], worker_id: str, pool: Pool,
              plugins: frozenset[str], stop: threading.Event) -> None:
        """One slot: claim a ready job, run it to its end, look again."""
        while not stop.is_set():
            try:
                row = self.jobs.claim_next(worker_id, pool, plugins)
            except Exception as exc:  # the database is away: look again later
                log.warning("could not look for jobs: %s", exc)
                row = None
            if row is None:
                stop.wait(POLL_SECONDS)
                continue
            take(row)

    def close(self) -> None:
        """Nothing to close."""


class CeleryQueue:
    def __init__(self, url: str, slots: dict[Pool, int], jobs: Jobs):
        from celery import Celery  # only where a broker is configured

        self.slots = slots
        self.jobs = jobs
        self.app = Celery("imagefactory", broker=url, set_as_current=False)
        self.app.conf.update(
            task_acks_late=True,
            task_reject_on_worker_lost=True,
            worker_prefetch_multiplier=1,
            broker_connection_retry_on_startup=True,
            broker_transport_options={"visibility_timeout": VISIBILITY_SECONDS},
            worker_hijack_root_logger=False,
            task_ignore_result=True,
        )

    def publish(self, row: JobRow) -> None:
        self.app.send_task(TASK_NAME, args=[row.image_id, row.pool],
                           queue=queue_name(row.plugin))

    def consume(self, take: Callable[[JobRow], None], worker_id: str,
                plugins: frozenset[str], stop: threading.Event,
                on_signal: Callable[[], None]) -> None:
        """Run a Celery worker in this thread (the main one: it handles the signals) on a
        thread pool of one slot per build and upload slot. A pool's slots are shared out by
        a semaphore, as Celery has one concurrency for all the queues it consumes. A message
        whose job another live worker runs, or that has ended, runs nothing; one whose job
        waits for an image still being built is given back (the end of that image publishes
        it again)."""
        from celery.signals import worker_shutting_down

        gates = {pool: threading.BoundedSemaphore(count) for pool, count in self.slots.items()}

        def run(image_id: str, pool: Pool) -> None:
            with gates[pool]:
                row = self.jobs.claim(image_id, worker_id)
                if row is None:
                    return
                if not self.jobs.parent_ended(image_id):
                    self.jobs.release(image_id, worker_id, uncount=True)
                    return
                take(row)

        def shutting_down(**_kwargs: Any) -> None:  # Celery's warm shutdown waits for tasks
            threading.Thread(target=on_signal, name="stop", daemon=True).start()

        self.app.task(name=TASK_NAME, acks_late=True)(run)
        worker_shutting_down.connect(shutting_down, weak=False)
        worker = self.app.Worker(
            queues=[queue_name(plugin) for plugin in sorted(plugins)],
            pool="threads", concurrency=sum(self.slots.values()), loglevel="INFO",
            without_mingle=True, without_gossip=True, without_heartbeat=True,
            hostname=f"imagefactory-{worker_id}@{socket.gethostname()}")
        watcher = threading.Thread(target=self._stop_when, args=(stop, worker), daemon=True)
        watcher.start()
        worker.start()

    @staticmethod
    def _stop_when(stop: threading.Event, worker: Any) -> None:
        stop.wait()
        worker.stop(in_sighandler=False)

    def close(self) -> None:
        self.app.close()
