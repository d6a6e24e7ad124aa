"""The embedded mode's record cache: reads answer what the database holds once a write has
returned, even when a read filling the cache races the write; status polls read an image and
its children in one call with or without the cache; the cache is on only where this process
is the database's only writer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from imagefactory_core.api.app import build_services
from imagefactory_core.errors import NotFound
from imagefactory_core.model import ImageKind, ImageRecord, Status
from imagefactory_core.store import ImageStore, RecordCache, Sealer, open_database
from imagefactory_core.store.cache import SqliteChanges
from imagefactory_core.testing import make_config

DEADLINE = 30.0


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return open_database(f"sqlite:///{tmp_path / 'images.db'}", connections=12)


def new_store(tmp_path: Path, engine: sa.Engine, cached: bool) -> ImageStore:
    return ImageStore(engine, tmp_path / "storage", Sealer(tmp_path / "secret.key"),
                      cache=RecordCache() if cached else None)


def create(store: ImageStore, kind: ImageKind = ImageKind.BASE, **links: str) -> str:
    return store.create(kind, redacted_template="<template/>", parameters={}, sealed="{}",
                        **links).id


def stored_percent(engine: sa.Engine, image_id: str) -> int:
    """What the database holds, read past any cache."""
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT percent_complete FROM images WHERE id = :id"),
                                      {"id": image_id}).scalar_one())


def wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.001)


# -- coherence -------------------------------------------------------------------------------
class PausingStore(ImageStore):
    """Stops a cache-filling load between its database read and its fill, when armed."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.armed = False
        self.read_done = threading.Event()
        self.resume = threading.Event()

    def _load(self, image_id: str) -> ImageRecord | None:
        record = super()._load(image_id)
        if self.armed:
            self.armed = False
            self.read_done.set()
            assert self.resume.wait(DEADLINE)
        return record


def test_a_fill_that_read_before_a_write_does_not_outlive_it(tmp_path, engine):
    """The race a write-invalidated cache must survive: a poll misses and reads the old row; a
    write commits and forgets the entry; then the poll fills the cache with the row it read.
    A cache that allowed that order would serve the old row until the next write."""
    store = PausingStore(engine, tmp_path / "storage", Sealer(tmp_path / "secret.key"),
                         cache=RecordCache())
    image_id = create(store)
    store.cache.forget(image_id)  # type: ignore[union-attr]
    store.armed = True
    polled: list[ImageRecord] = []
    poller = threading.Thread(target=lambda: polled.append(store.get(image_id)))
    poller.start()
    assert store.read_done.wait(DEADLINE)
    writer = threading.Thread(target=store.set_progress, args=(image_id, 60, "Installing"))
    writer.start()
    wait_until(lambda: stored_percent(engine, image_id) == 60, "the write's commit")
    store.resume.set()
    poller.join(DEADLINE)
    writer.join(DEADLINE)
    assert polled[0].percent_complete == 0  # it read before the commit: the old row
    assert store.get(image_id).percent_complete == 60


def test_every_read_after_a_write_sees_it_under_concurrent_polls(tmp_path, engine):
    """A writer raises percent_complete step by step (as builds do) and changes the status,
    while pollers read as fast as they can: a read that starts after a write returned shows
    that write or a later one, and the cache ends as the database."""
    store = new_store(tmp_path, engine, cached=True)
    image_id = create(store)
    target_id = create(store, ImageKind.TARGET, base_image_id=image_id, target="x")
    written = [0]
    stop = threading.Event()
    stale: list[tuple[int, int]] = []
    wrong_children: list[list[str]] = []

    def poll() -> None:
        while not stop.is_set():
            floor = written[0]
            record, children = store.get_with_children(image_id, ImageKind.BASE)
            if record.percent_complete < floor:
                stale.append((record.percent_complete, floor))
            if [child.id for child in children or ()] != [target_id]:
                wrong_children.append([child.id for child in children or ()])
            time.sleep(0)  # a cache hit never releases the GIL: let the writer run

    pollers = [threading.Thread(target=poll) for _ in range(4)]
    for poller in pollers:
        poller.start()
    try:
        for percent in range(1, 101):
            if percent % 10 == 0:
                store.update(image_id, status=Status.BUILDING, activity=f"step {percent}")
            store.set_progress(image_id, percent, None)
            written[0] = percent
    finally:
        stop.set()
        for poller in pollers:
            poller.join(DEADLINE)
    assert stale == []
    assert wrong_children == []
    store.update(target_id, status=Status.DELETED)
    assert store.get_with_children(image_id, ImageKind.BASE)[1] == []
    uncached = new_store(tmp_path, engine, cached=False)
    assert store.get(image_id) == uncached.get(image_id)
    assert store.get(image_id).status_detail.activity == "step 100"


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
def test_a_poll_reads_an_image_and_its_children(tmp_path, engine, cached):
    store = new_store(tmp_path, engine, cached)
    base = create(store)
    assert store.get_with_children(base, ImageKind.BASE) == (store.get(base), [])
    first = create(store, ImageKind.TARGET, base_image_id=base, target="x")
    second = create(store, ImageKind.TARGET, base_image_id=base, target="y")
    create(store, ImageKind.BASE)  # not a child
    record, children = store.get_with_children(base, ImageKind.BASE)
    assert record == store.get(base)
    assert [child.id for child in children or ()] == [first, second]
    assert {child.kind for child in children or ()} == {ImageKind.TARGET}
    pushed = create(store, ImageKind.PROVIDER, target_image_id=first, target="x", provider="p")
    store.update(second, status=Status.DELETED)
    assert [c.id for c in store.get_with_children(base, ImageKind.BASE)[1] or ()] == [first]
    assert [c.id for c in store.get_with_children(first, ImageKind.TARGET)[1] or ()] == [pushed]
    assert store.get_with_children(pushed, ImageKind.PROVIDER) == (store.get(pushed), None)
    for image_id, kind in (("nope", ImageKind.BASE), (first, ImageKind.BASE),
                           (base, ImageKind.TARGET)):
        with pytest.raises(NotFound) as raised:
            store.get_with_children(image_id, kind)
        assert f"{kind.value} {image_id} not found" in str(raised.value)


# -- bounds and where it is on ----------------------------------------------------------------
def test_the_cache_keeps_within_its_byte_budget_dropping_the_oldest():
    cache = RecordCache(max_bytes=1000)
    loads: list[str] = []

    def value(key: str) -> str:
        return cache.get(key, lambda: loads.append(key) or key, lambda _: 300) or ""

    for key in "abcd":
        value(key)
    assert loads == ["a", "b", "c", "d"]
    value("d")
    value("b")
    value("a")  # dropped when d came in: 4 x 300 > 1000
    assert loads == ["a", "b", "c", "d", "a"]
    assert cache.get("huge", lambda: "x", lambda _: 1001) == "x"
    assert cache.get("huge", lambda: "y", lambda _: 1001) == "y"  # larger than all: not kept


def test_the_cache_is_on_only_for_the_state_directorys_own_database(tmp_path):
    """Another process may write a database named by ``database_url`` (PostgreSQL, several
    services): only the state directory's, under the state lock, is cached."""
    for overrides, cached in (({}, True),
                              ({"database_url": f"sqlite:///{tmp_path / 'shared.db'}"}, False)):
        services = build_services(make_config(tmp_path, **overrides))
        try:
            assert (services.store.cache is not None) is cached
        finally:
            services.engine.shutdown()


def test_a_cache_watching_the_file_sees_what_another_process_writes(tmp_path: Path):
    """The API beside a build worker: the worker's writes reach the API's polls at once,
    however many threads poll while it writes."""
    database = tmp_path / "shared.db"
    api = ImageStore(open_database(f"sqlite:///{database}"), tmp_path / "storage",
                     Sealer(tmp_path / "secret.key"),
                     cache=RecordCache(changed=SqliteChanges(database)))
    worker = ImageStore(open_database(f"sqlite:///{database}"), tmp_path / "storage",
                        Sealer(tmp_path / "secret.key"))
    image_id = create(api)
    assert api.get(image_id).status is Status.NEW  # cached now
    stop = threading.Event()
    wrong: list[int] = []

    def poll() -> None:
        while not stop.is_set():
            before = written[0]
            seen = api.get(image_id).percent_complete
            if seen < before:
                wrong.append(seen)

    written = [0]
    pollers = [threading.Thread(target=poll) for _ in range(4)]
    for thread in pollers:
        thread.start()
    for percent in range(1, 60):
        worker.set_progress(image_id, percent, None)
        written[0] = percent
        time.sleep(0.002)
    stop.set()
    for thread in pollers:
        thread.join()
    assert wrong == [], "a poll after a write saw the value from before it"
    worker.update(image_id, status=Status.COMPLETE)
    assert api.get(image_id).status is Status.COMPLETE
    assert [r.id for r in api.list(ImageKind.BASE)] == [image_id]
