"""The rows that carry jobs to build workers (`store.jobs`): one live worker claims a row, a job
waits for its parent, a dead worker's rows are handed out again (never a live one's), a row
ends only for the worker that claimed it, and credentials are sealed at rest."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from imagefactory_core.model import ImageKind, Status
from imagefactory_core.store import ImageStore, Instance, Instances, Sealer, open_database
from imagefactory_core.store.jobs import Jobs
from imagefactory_core.store.schema import instances, jobs

PLUGINS = frozenset({"os"})
SECRET = "Sealed-Credential-5c1e"


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return open_database(f"sqlite:///{tmp_path / 'jobs.db'}")


@pytest.fixture
def store(engine: sa.Engine, tmp_path: Path) -> ImageStore:
    return ImageStore(engine, tmp_path / "storage", Sealer(tmp_path / "secret.key"))


@pytest.fixture
def queue(engine: sa.Engine, store: ImageStore) -> Jobs:
    services = Instances(engine, stale_seconds=30)
    for worker in ("w1", "w2"):
        services.join(Instance(worker, f"host:{worker}", 1))
    return Jobs(engine, store.sealer, services)


def image(store: ImageStore, kind: ImageKind = ImageKind.BASE, **links: str) -> str:
    record = store.create(kind, redacted_template=None, parameters={}, sealed="{}", **links)
    store.update(record.id, status=Status.PENDING)
    return record.id


def test_one_worker_claims_a_row_however_many_race_for_it(queue: Jobs, store: ImageStore):
    image_id = image(store)
    queue.put(image_id, "build", "build", "os", None, {})
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda n: queue.claim_next(f"w{n % 2 + 1}", "build", PLUGINS),
                               range(8)))
    won = [row for row in claims if row is not None]
    assert len(won) == 1 and won[0].attempts == 1
    assert queue.claim(image_id, "w1" if won[0].worker == "w2" else "w2") is None


def test_a_job_is_ready_once_its_parent_has_ended(queue: Jobs, store: ImageStore):
    parent = image(store)
    child = image(store, ImageKind.TARGET, base_image_id=parent)
    queue.put(child, "build", "build", "os", parent, {})
    assert not queue.parent_ended(child)
    assert queue.claim_next("w1", "build", PLUGINS) is None
    store.update(parent, status=Status.COMPLETE)
    assert queue.parent_ended(child)
    assert [row.image_id for row in queue.waiting_for(parent)] == [child]
    assert queue.claim_next("w1", "build", PLUGINS).image_id == child


def test_workers_take_only_their_pools_and_plugins(queue: Jobs, store: ImageStore):
    push = image(store, ImageKind.PROVIDER)
    queue.put(push, "build", "upload", "cloud", None, {})
    assert queue.claim_next("w1", "build", frozenset({"os", "cloud"})) is None
    assert queue.claim_next("w1", "upload", PLUGINS) is None
    assert queue.claim_next("w1", "upload", frozenset({"cloud"})).image_id == push


def test_a_dead_workers_rows_are_released_but_never_ones_own(queue: Jobs, store: ImageStore,
                                                              engine: sa.Engine):
    mine, theirs = image(store), image(store)
    for image_id in (mine, theirs):
        queue.put(image_id, "build", "build", "os", None, {})
    assert queue.claim(mine, "w1") and queue.claim(theirs, "w2")
    assert queue.release_dead("w1") == []
    with engine.begin() as conn:  # both heartbeats go stale (the database was away)
        conn.execute(sa.update(instances).values(
            heartbeat_at=datetime.now(UTC) - timedelta(hours=1)))
    assert queue.release_dead("w1") == [theirs]
    assert queue.get(mine).worker == "w1" and queue.get(theirs).worker is None
    again = queue.claim(theirs, "w1")
    assert again is not None and again.attempts == 2


def test_a_row_ends_only_for_the_worker_that_claimed_it(queue: Jobs, store: ImageStore):
    image_id = image(store)
    queue.put(image_id, "build", "build", "os", None, {})
    queue.claim(image_id, "w1")
    queue.put(image_id, "delete", "build", "os", None, {})  # the client's next job
    queue.done(image_id, "w1")
    assert queue.get(image_id).action == "delete"


def test_an_unclaimed_row_is_taken_back_and_a_claimed_one_asked_to_stop(queue: Jobs,
                                                                         store: ImageStore):
    waiting, running = image(store), image(store)
    for image_id in (waiting, running):
        queue.put(image_id, "build", "build", "os", None, {"credentials": {"k": SECRET}})
    queue.claim(running, "w2")
    assert queue.take_unclaimed(waiting) and queue.get(waiting) is None
    assert not queue.take_unclaimed(running)
    queue.request_cancel(running, "delete", ["http://127.0.0.1:9/cb"])
    [asked] = queue.cancels("w2")
    assert asked.cancel == "delete" and asked.payload == {
        "credentials": {"k": SECRET}, "cancel_callbacks": ["http://127.0.0.1:9/cb"]}
    assert queue.cancels("w1") == []


def test_credentials_are_sealed_and_another_key_is_said(queue: Jobs, store: ImageStore,
                                                        engine: sa.Engine, tmp_path: Path):
    image_id = image(store)
    queue.put(image_id, "build", "upload", "os", None, {"credentials": {"k": SECRET}})
    with engine.connect() as conn:
        stored = conn.execute(sa.select(jobs.c.payload)).scalar_one()
    assert SECRET.encode() not in stored
    assert queue.get(image_id).payload["credentials"] == {"k": SECRET}
    other = Jobs(engine, Sealer(tmp_path / "other.key"), queue.services)
    row = other.get(image_id)
    assert row.payload == {} and "secret_key_path" in (row.unreadable or "")


def test_rows_the_queue_may_not_have_are_swept_once(queue: Jobs, store: ImageStore,
                                                    engine: sa.Engine):
    published, lost = image(store), image(store)
    for image_id in (published, lost):
        queue.put(image_id, "build", "build", "os", None, {})
    queue.mark_published(published)
    assert queue.unpublished(never=60, again=600) == []  # the API may still be publishing
    with engine.begin() as conn:
        conn.execute(sa.update(jobs).values(created_at=datetime.now(UTC) - timedelta(hours=1)))
    assert [row.image_id for row in queue.unpublished(never=60, again=600)] == [lost]
    assert queue.unpublished(never=60, again=600) == []
    with engine.begin() as conn:  # ten minutes later, neither is claimed
        conn.execute(sa.update(jobs).values(
            published_at=datetime.now(UTC) - timedelta(minutes=10)))
    with ThreadPoolExecutor(4) as pool:
        sweeps = list(pool.map(lambda _: queue.unpublished(never=60, again=600), range(4)))
    assert sorted(row.image_id for rows in sweeps for row in rows) == sorted([published, lost])
