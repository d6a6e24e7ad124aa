"""The services sharing the metadata database, which of them are alive, and whose work each
unfinished image is.

Several services (on several hosts) may share one PostgreSQL database. Each is an *instance*,
named by its state directory's id (`statelock.instance_id`, so a restarted service is the same
instance). Every image records the instance that last changed its status (`images.owner`,
written by `ImageStore`): for an unfinished image, the service doing or queueing its work.
A running service writes a heartbeat every `HEARTBEAT_SECONDS` (`Instances.beat`); one whose
last is older than `STALE_SECONDS` is taken for dead, and one that stops cleanly leaves.

Restart recovery claims only the unfinished images it may (`Instances.claim_unfinished`): its
own (its previous run's), those with no owner (written before owners were recorded), and those
of dead instances. Another live service's builds are never touched. Times are the database
server's, so the hosts' clocks need not agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Engine, delete, exists, insert, or_, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement, current_timestamp

from ..errors import InvalidRequest
from ..model import Status
from .database import RECOVERY_LOCK, serialize
from .schema import images, instances, jobs

HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 60
# The statuses of images whose work is queued or running: the ones that have an owner.
UNFINISHED = (Status.NEW, Status.PENDING, Status.BUILDING, Status.DELETING)
_UNFINISHED = images.c.status.in_([status.value for status in UNFINISHED])


class _StaleBefore(FunctionElement[Any]):
    """The database's time `seconds` ago: older heartbeats are those of dead services."""

    type = DateTime(timezone=True)
    inherit_cache = False  # `seconds` is written into the SQL text

    def __init__(self, seconds: int):
        super().__init__()
        self.seconds = int(seconds)


@compiles(_StaleBefore)
def _standard(element: _StaleBefore, _compiler: Any, **_kw: Any) -> str:
    return f"CURRENT_TIMESTAMP - INTERVAL '{element.seconds}' SECOND"


@compiles(_StaleBefore, "sqlite")
def _sqlite(element: _StaleBefore, _compiler: Any, **_kw: Any) -> str:
    # the text form CURRENT_TIMESTAMP has in SQLite, so the two compare as they should
    return f"datetime('now', '-{element.seconds} seconds')"


@dataclass(frozen=True)
class Instance:
    id: str
    location: str  # "<host>:<state directory>"
    pid: int

    def __str__(self) -> str:
        return f"imagefactory pid {self.pid} at {self.location}"


class Instances:
    def __init__(self, engine: Engine, stale_seconds: int = STALE_SECONDS):
        """`stale_seconds`: a service whose last heartbeat is older is taken for dead."""
        self.engine = engine
        self.alive = instances.c.heartbeat_at >= _StaleBefore(stale_seconds)

    def join(self, me: Instance) -> None:
        """Record `me` alive. Refuse (`InvalidRequest`) when another live service uses the same
        id: two state directories copied from one would take each other's builds for theirs.
        (The same location is this service's previous run: the state lock says it is gone.)"""
        with self.engine.begin() as conn:
            row = conn.execute(select(instances.c.location, instances.c.pid,
                                      self.alive.label("alive"))
                               .where(instances.c.id == me.id)).first()
            if row is not None and row.alive and row.location != me.location:
                raise InvalidRequest(
                    f"instance id {me.id} (state_dir/instance.id) is in use by "
                    f"{Instance(me.id, row.location, row.pid)}, alive on this database: was "
                    "a state directory copied? Remove instance.id from this one (a new id is "
                    "made at start)")
        self.beat(me)

    def beat(self, me: Instance) -> None:
        """Say `me` is alive, now."""
        values = {"location": me.location, "pid": me.pid, "heartbeat_at": current_timestamp()}
        with self.engine.begin() as conn:
            if conn.execute(update(instances).where(instances.c.id == me.id)
                            .values(**values)).rowcount == 0:
                conn.execute(insert(instances).values(id=me.id, **values))

    def leave(self, me: Instance) -> None:
        """`me` stops: what it leaves unfinished may be recovered by any service at once."""
        with self.engine.begin() as conn:
            conn.execute(delete(instances).where(instances.c.id == me.id))

    def holder(self, image_id: str) -> Instance | None:
        """The live service whose work `image_id` is: its owner, if the image is unfinished
        and the owner alive."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(instances.c.id, instances.c.location, instances.c.pid)
                .select_from(images.join(instances, instances.c.id == images.c.owner))
                .where(images.c.id == image_id, _UNFINISHED, self.alive)).first()
        return None if row is None else Instance(row.id, row.location, row.pid)

    def claim_unfinished(self, owner: str) -> list[str]:
        """Make `owner` the owner of the unfinished images it may recover (its own, those of
        no owner or of a dead service); return their ids, oldest first.

        Services starting together claim one at a time (the recovery lock), each after the
        others' claims and first heartbeats are committed, so an image is claimed once. An
        image with a job row is the build workers' queue's (`store.jobs`), not recovered here."""
        living = select(instances.c.id).where(self.alive)
        queued = exists(select(jobs.c.image_id).where(jobs.c.image_id == images.c.id))
        with self.engine.begin() as conn:
            serialize(conn, RECOVERY_LOCK)
            conn.execute(update(images).where(
                _UNFINISHED, ~queued,
                or_(images.c.owner.is_(None), images.c.owner == owner,
                    images.c.owner.not_in(living)),
            ).values(owner=owner))
            return list(conn.execute(
                select(images.c.id).where(_UNFINISHED, ~queued, images.c.owner == owner)
                .order_by(images.c.created_at)).scalars())
