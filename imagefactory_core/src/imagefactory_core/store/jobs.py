"""The jobs handed to build workers in other processes: the durable half of the job queue.

The API writes a row per job it queues (`put`); a worker claims it (`claim`, `claim_next`),
runs it and deletes the row when the job has ended (`done`). The row, not the message a
broker carries, is the truth: a message only says "look at row X", a row is claimed by one
live worker at a time (an atomic UPDATE), and the rows of a worker whose heartbeat went
stale are released (`release_dead`) and handed out again, as its unacknowledged messages
are by the broker. A job's credentials (a push's, a cloud delete's) travel sealed in the
row's payload and leave the database with the row.

A job is *ready* when the image it waits for (its parent) has ended: workers claim only ready
jobs, so no worker slot waits on another's build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, and_, delete, insert, or_, select, update

from ..errors import BuildError
from ..model import Status
from .instances import Instances
from .schema import images, instances, jobs
from .sealing import Sealer

Pool = Literal["build", "upload"]
CancelMode = Literal["cancel", "delete"]
# Statuses of an image whose work has not ended: a job waiting for it is not ready.
_WORKING = (Status.NEW.value, Status.PENDING.value, Status.BUILDING.value,
            Status.DELETING.value)


@dataclass(frozen=True)
class JobRow:
    """One queued or running job. `payload` (unsealed): ``credentials``, and for a delete the
    ``provider`` and ``callbacks`` the DELETE gave."""

    image_id: str
    action: str
    pool: Pool
    plugin: str
    parent_id: str | None
    payload: dict[str, Any] = field(repr=False)
    worker: str | None
    cancel: str | None
    attempts: int
    unreadable: str | None = None  # why the payload cannot be unsealed (another key?)


class Jobs:
    def __init__(self, engine: Engine, sealer: Sealer, services: Instances):
        """`services`: the instances sharing the database (which workers are alive)."""
        self.engine = engine
        self.sealer = sealer
        self.services = services

    def _row(self, row: Any) -> JobRow:
        payload, unreadable = {}, None
        try:
            payload = json.loads(self.sealer.unseal(row.payload)) if row.payload else {}
        except BuildError as exc:  # the worker records the job FAILED saying so
            unreadable = (f"the queued job cannot be unsealed with this worker's key ({exc}); "
                          "API servers and workers must share secret_key_path")
        return JobRow(row.image_id, row.action, row.pool, row.plugin, row.parent_id, payload,
                      row.worker, row.cancel, row.attempts, unreadable)

    def put(self, image_id: str, action: str, pool: Pool, plugin: str, parent_id: str | None,
            payload: dict[str, Any]) -> None:
        """Queue a job (replacing an ended one's row, which a delete after a build may find)."""
        sealed = self.sealer.seal(json.dumps(payload)) if payload else None
        with self.engine.begin() as conn:
            conn.execute(delete(jobs).where(jobs.c.image_id == image_id))
            conn.execute(insert(jobs).values(
                image_id=image_id, action=action, pool=pool, plugin=plugin,
                parent_id=parent_id, payload=sealed, worker=None, cancel=None, attempts=0,
                created_at=datetime.now(UTC)))

    def get(self, image_id: str) -> JobRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.image_id == image_id)).first()
        return None if row is None else self._row(row)

    @staticmethod
    def _parent_ended() -> ColumnElement[bool]:
        parent = images.alias("parent")
        return ~select(parent.c.id).where(parent.c.id == jobs.c.parent_id,
                                          parent.c.status.in_(_WORKING)).exists()

    def _ready(self) -> ColumnElement[bool]:
        return and_(jobs.c.worker.is_(None), self._parent_ended())

    def parent_ended(self, image_id: str) -> bool:
        """Whether the image job `image_id` waits for (if any) has ended."""
        with self.engine.connect() as conn:
            return conn.execute(select(jobs.c.image_id).where(
                jobs.c.image_id == image_id, self._parent_ended())).first() is not None

    def claim(self, image_id: str, worker: str) -> JobRow | None:
        """Make `worker` the one running the job, if no live worker does; the claimed row."""
        living = select(instances.c.id).where(self.services.alive)
        with self.engine.begin() as conn:
            claimed = conn.execute(update(jobs).where(
                jobs.c.image_id == image_id,
                or_(jobs.c.worker.is_(None), jobs.c.worker.not_in(living)),
            ).values(worker=worker, attempts=jobs.c.attempts + 1)).rowcount
        return self._claimed(image_id, worker) if claimed else None

    def _claimed(self, image_id: str, worker: str) -> JobRow | None:
        row = self.get(image_id)
        return row if row is not None and row.worker == worker else None

    def claim_next(self, worker: str, pool: Pool, plugins: frozenset[str]) -> JobRow | None:
        """Claim the oldest ready job of `pool` among `plugins`' jobs; None when none is.
        Workers racing for one row: the UPDATE succeeds for one, the others try the next."""
        query = select(jobs.c.image_id).where(jobs.c.pool == pool, jobs.c.plugin.in_(
            sorted(plugins)), self._ready())
        with self.engine.connect() as conn:
            candidates = conn.execute(query.order_by(jobs.c.created_at).limit(8)).scalars().all()
        for image_id in candidates:
            with self.engine.begin() as conn:
                claimed = conn.execute(update(jobs).where(
                    jobs.c.image_id == image_id, jobs.c.worker.is_(None),
                ).values(worker=worker, attempts=jobs.c.attempts + 1)).rowcount
            if claimed:
                return self._claimed(image_id, worker)
        return None

    def release(self, image_id: str, worker: str, *, uncount: bool = False) -> None:
        """Give a claimed job back to the queue (a stopping worker's, one not ready yet);
        `uncount`: the claim was not an attempt to run it."""
        values: dict[str, Any] = {"worker": None}
        if uncount:
            values["attempts"] = jobs.c.attempts - 1
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.image_id == image_id,
                                            jobs.c.worker == worker).values(**values))

    def release_all(self, worker: str) -> list[str]:
        """Release every job `worker` holds (its previous run's, when it starts again)."""
        with self.engine.begin() as conn:
            ids = conn.execute(select(jobs.c.image_id).where(jobs.c.worker == worker)
                               ).scalars().all()
            conn.execute(update(jobs).where(jobs.c.worker == worker).values(worker=None))
        return list(ids)

    def release_dead(self, me: str) -> list[str]:
        """Release the jobs of workers whose heartbeat is stale; their ids. Never `me`'s: a
        worker that looks dead to itself (its beats failed while the database was away) still
        runs its jobs."""
        living = select(instances.c.id).where(self.services.alive)
        dead = and_(jobs.c.worker.is_not(None), jobs.c.worker != me,
                    jobs.c.worker.not_in(living))
        with self.engine.begin() as conn:
            ids = conn.execute(select(jobs.c.image_id).where(dead)).scalars().all()
            if ids:
                conn.execute(update(jobs).where(jobs.c.image_id.in_(ids), dead)
                             .values(worker=None))
        return list(ids)

    def done(self, image_id: str, worker: str) -> None:
        """The job `worker` claimed ended: its row (and the credentials in it) goes. Only
        that row: a client who saw the end may already have queued the image's next job."""
        with self.engine.begin() as conn:
            conn.execute(delete(jobs).where(jobs.c.image_id == image_id,
                                            jobs.c.worker == worker))

    def take_unclaimed(self, image_id: str) -> bool:
        """Remove the job if no worker has claimed it (it will never run); whether it did."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(jobs).where(jobs.c.image_id == image_id,
                                                        jobs.c.worker.is_(None))).rowcount)

    def request_cancel(self, image_id: str, mode: CancelMode, callbacks: list[str]) -> None:
        """Ask the worker running the job to stop it (`mode` delete: and delete the image);
        `callbacks` (a DELETE's own) hear how it ends."""
        row = self.get(image_id)
        if row is None:
            return
        payload = {**row.payload, "cancel_callbacks": callbacks}
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.image_id == image_id).values(
                cancel=mode, payload=self.sealer.seal(json.dumps(payload))))

    def cancels(self, worker: str) -> list[JobRow]:
        """The jobs `worker` runs that a client asked to stop."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.worker == worker,
                                                   jobs.c.cancel.is_not(None))).all()
        return [self._row(row) for row in rows]

    def waiting_for(self, parent_id: str) -> list[JobRow]:
        """The unclaimed jobs that waited for `parent_id` (ready once it has ended)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.parent_id == parent_id,
                                                   jobs.c.worker.is_(None))).all()
        return [self._row(row) for row in rows]

    def unpublished(self, never: float, again: float) -> list[JobRow]:
        """Ready, unclaimed jobs to hand to the queue again: those never handed to it, queued
        over `never` seconds ago (the broker was away), and those handed over more than
        `again` seconds ago (a broker that lost its messages). Each is marked published now,
        by one UPDATE per row, so of workers sweeping at once one republishes it."""
        now = datetime.now(UTC)
        lost = or_(and_(jobs.c.published_at.is_(None),
                        jobs.c.created_at < now - timedelta(seconds=never)),
                   jobs.c.published_at < now - timedelta(seconds=again))
        with self.engine.connect() as conn:
            candidates = conn.execute(select(jobs.c.image_id).where(self._ready(), lost)
                                      ).scalars().all()
        swept = []
        for image_id in candidates:
            with self.engine.begin() as conn:
                if conn.execute(update(jobs).where(jobs.c.image_id == image_id, lost)
                                .values(published_at=now)).rowcount:
                    swept.append(image_id)
        return [row for row in map(self.get, swept) if row is not None]

    def mark_published(self, image_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.image_id == image_id)
                         .values(published_at=datetime.now(UTC)))
