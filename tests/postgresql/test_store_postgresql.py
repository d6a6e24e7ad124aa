"""The metadata store on a real PostgreSQL server: the migrations make exactly the tables of
store/schema.py; records, listings and status polls behave as on SQLite; services starting
together migrate once; a nonce used by several processes at once is accepted once; restart
recovery claims only what it may, once, on PostgreSQL and on SQLite alike, including the
images of a database made before images had owners."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from imagefactory_core.errors import InvalidRequest, NotFound
from imagefactory_core.model import ImageKind, ImageRef, Outcome, Status
from imagefactory_core.store import ImageStore, Instance, Instances, Sealer, open_database
from imagefactory_core.store.database import MIGRATIONS
from imagefactory_core.store.instances import UNFINISHED
from imagefactory_core.store.schema import images, metadata

from .conftest import age_heartbeat
from .racers import migrate, race, start_and_claim, use_nonces

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()
RACERS = 4


@pytest.fixture
def engine(postgresql_url: str) -> sa.Engine:
    return open_database(postgresql_url)


@pytest.fixture
def store(engine: sa.Engine, tmp_path: Path) -> ImageStore:
    return ImageStore(engine, tmp_path / "storage", Sealer(tmp_path / "secret.key"),
                      owner="00000000-0000-4000-8000-00000000000a")


def create(store: ImageStore, kind: ImageKind = ImageKind.BASE, **links: Any) -> str:
    return store.create(kind, redacted_template="<template>*****</template>",
                        parameters={"callbacks": ["http://*****@127.0.0.1:9/cb"],
                                    "nested": {"list": [1, 2.5, None, True], "text": "é"}},
                        sealed=json.dumps({"template": "<template>secret</template>"}),
                        **links).id


# -- schema ----------------------------------------------------------------------------------
def test_migrations_build_the_schema_of_schema_py(engine):
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        types = dict(connection.execute(sa.text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'images'")).all())
    assert version == [(HEAD,)]
    assert set(sa.inspect(engine).get_table_names()) == {*metadata.tables, "alembic_version"}
    assert types["created_at"] == types["updated_at"] == "timestamp with time zone"
    assert types["sealed"] == "bytea"


def test_servers_starting_together_on_an_empty_database_migrate_once(postgresql_url):
    """Without the migration lock, racers' CREATE TABLEs collide (a duplicate key in
    PostgreSQL's catalog) and fail: about one run in two here."""
    results = race(migrate, [(postgresql_url,)] * RACERS)
    assert [r.error for r in results] == [None] * RACERS, [r.error for r in results]
    engine = sa.create_engine(postgresql_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).all() \
            == [(HEAD,)]
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()


# -- records ---------------------------------------------------------------------------------
def test_records_round_trip_and_are_committed_when_the_call_returns(store, postgresql_url):
    image_id = create(store)
    record = store.get(image_id, ImageKind.BASE)
    assert record.status is Status.NEW
    assert record.parameters["nested"] == {"list": [1, 2.5, None, True], "text": "é"}
    assert store.sealed(image_id) == json.dumps({"template": "<template>secret</template>"})
    store.update(image_id, status=Status.BUILDING, activity="Installing",
                 properties={"size": 2 ** 40})
    store.finish(image_id, Outcome(Status.COMPLETE, "Done", icicle="<icicle/>"))

    other = sa.create_engine(postgresql_url)  # another service's connection
    with other.connect() as connection:
        row = connection.execute(sa.select(images).where(images.c.id == image_id)).one()
    other.dispose()
    assert (row.status, row.percent_complete, row.icicle) == ("COMPLETE", 100, "<icicle/>")
    assert json.loads(row.properties) == {"size": 2 ** 40}
    assert row.owner == store.owner
    assert row.created_at.tzinfo is not None
    assert abs(row.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert row.updated_at >= row.created_at
    assert store.get(image_id).properties == {"size": 2 ** 40}


def test_unknown_ids_are_not_found_whatever_they_hold(store):
    image_id = create(store)
    for unknown in ("nope", "\x00", f"{image_id}\x00", "x" * 1000, "é" * 40):
        with pytest.raises(NotFound):
            store.get(unknown)
        assert store.refs(ImageKind.TARGET, base_image_id=unknown) == []
    with pytest.raises(NotFound):
        store.get(image_id, ImageKind.TARGET)


def test_a_nul_character_is_kept_as_a_replacement_character(store):
    image_id = create(store)
    store.set_progress(image_id, 5, "unpacking \x00 archive")
    store.update(image_id, error="tar: \x00")
    record = store.get(image_id)
    assert record.status_detail.activity == "unpacking \ufffd archive"
    assert record.status_detail.error == "tar: \ufffd"


def test_listings_children_and_progress(store):
    base = create(store)
    targets = [create(store, ImageKind.TARGET, base_image_id=base, target="t" * 64)
               for _ in range(3)]
    store.update(targets[1], status=Status.DELETED)
    kept = [targets[0], targets[2]]
    assert [r.id for r in store.list(ImageKind.TARGET, base_image_id=base)] == kept
    assert store.refs(ImageKind.TARGET, base_image_id=base) == [
        ImageRef(i, ImageKind.TARGET) for i in kept]
    assert len(store.refs(ImageKind.TARGET, include_deleted=True)) == 3
    record, children = store.get_with_children(base, ImageKind.BASE)
    assert record.id == base
    assert children == [ImageRef(i, ImageKind.TARGET) for i in kept]
    assert store.get_with_children(targets[0], ImageKind.TARGET)[1] == []
    with pytest.raises(NotFound):
        store.get_with_children(base, ImageKind.TARGET)

    seen = []
    for percent in (10, 50, 30, 99, 250, -5):
        store.set_progress(base, percent, None)
        seen.append(store.get(base).percent_complete)
    assert seen == [10, 50, 50, 99, 100, 100]


# -- OAuth nonces ----------------------------------------------------------------------------
def test_a_nonce_used_by_several_processes_at_once_is_accepted_once(engine, postgresql_url):
    nonces = [f"race-{n}" for n in range(25)]
    results = race(use_nonces, [(postgresql_url, nonces, int(time.time()))] * RACERS)
    assert [r.error for r in results] == [None] * RACERS, [r.error for r in results]
    for position, nonce in enumerate(nonces):
        accepted = [r.value[position] for r in results]
        assert accepted.count(True) == 1, (nonce, accepted)


# -- ownership and recovery claims (PostgreSQL and SQLite) -----------------------------------
@pytest.fixture(params=["postgresql", "sqlite"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'claims.db'}"
    return str(request.getfixturevalue("postgresql_url"))


def owned_store(url: str, root: Path, owner: str | None) -> ImageStore:
    return ImageStore(open_database(url), root / "storage", Sealer(root / "secret.key"),
                      owner=owner)


def test_recovery_claims_its_own_the_ownerless_and_the_dead_services_images(any_url,
                                                                            tmp_path):
    me, alive, dead, gone = (f"00000000-0000-4000-8000-00000000000{n}" for n in range(1, 5))
    instances = Instances(open_database(any_url))
    for instance in (me, alive, dead):
        instances.join(Instance(instance, f"host-{instance}:/state", 1))
    age_heartbeat(any_url, dead)
    made: dict[str | None, list[str]] = {}
    finished: dict[str | None, str] = {}
    for owner in (me, alive, dead, gone, None):
        store = owned_store(any_url, tmp_path, owner)
        unfinished = [create(store) for _ in UNFINISHED]
        for image_id, status in zip(unfinished, UNFINISHED, strict=True):
            store.update(image_id, status=status)
        finished[owner] = create(store)
        store.update(finished[owner], status=Status.FAILED)
        made[owner] = unfinished

    claimed = instances.claim_unfinished(me)
    assert set(claimed) == {*made[me], *made[dead], *made[gone], *made[None]}
    assert set(made[alive]).isdisjoint(claimed)
    assert instances.holder(made[alive][0]) == Instance(alive, f"host-{alive}:/state", 1)
    assert instances.holder(made[dead][0]) == Instance(me, f"host-{me}:/state", 1)
    assert instances.holder(create(owned_store(any_url, tmp_path, alive))) is not None
    assert instances.holder(finished[alive]) is None  # a final image is nobody's work

    instances.leave(Instance(alive, f"host-{alive}:/state", 1))
    assert set(made[alive]) <= set(instances.claim_unfinished(me))


def test_services_starting_together_claim_each_image_once(postgresql_url, tmp_path):
    dead = "00000000-0000-4000-8000-0000000000de"
    Instances(open_database(postgresql_url)).join(Instance(dead, "gone:/state", 1))
    age_heartbeat(postgresql_url, dead)
    store = owned_store(postgresql_url, tmp_path, dead)
    left = {create(store) for _ in range(20)}
    for image_id in left:
        store.update(image_id, status=Status.BUILDING)
    starters = [(postgresql_url, f"00000000-0000-4000-8000-00000000000{n}") for n in range(3)]
    results = race(start_and_claim, starters)
    assert [r.error for r in results] == [None] * len(starters), [r.error for r in results]
    claims = [set(r.value) for r in results]
    assert set().union(*claims) == left
    assert sum(len(c) for c in claims) == len(left), claims


def test_a_copied_state_directory_is_refused_while_its_twin_runs(any_url):
    instances = Instances(open_database(any_url))
    twin = "00000000-0000-4000-8000-0000000000c0"
    instances.join(Instance(twin, "host-a:/var/lib/imagefactory", 100))
    with pytest.raises(InvalidRequest) as refused:
        instances.join(Instance(twin, "host-b:/var/lib/imagefactory", 200))
    assert "host-a:/var/lib/imagefactory" in str(refused.value)
    assert "instance.id" in str(refused.value)
    instances.join(Instance(twin, "host-a:/var/lib/imagefactory", 101))  # its own restart
    age_heartbeat(any_url, twin)
    instances.join(Instance(twin, "host-b:/var/lib/imagefactory", 200))  # the twin is dead


def test_a_database_of_the_first_schema_is_migrated_and_its_unfinished_images_claimed(any_url):
    """An upgrade: images recorded before owners existed are anyone's to recover."""
    engine = sa.create_engine(any_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        now = datetime.now(UTC)
        connection.execute(sa.text(
            "INSERT INTO images (id, kind, status, percent_complete, activity, parameters, "
            "properties, created_at, updated_at) VALUES ('old', 'BaseImage', 'BUILDING', 40, "
            "'Installing', '{}', '{}', :now, :now)"), {"now": now})
    engine.dispose()
    migrated = open_database(any_url)
    with migrated.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).all() \
            == [(HEAD,)]
        assert connection.execute(sa.text("SELECT owner FROM images")).all() == [(None,)]
    me = "00000000-0000-4000-8000-000000000001"
    Instances(migrated).join(Instance(me, "host:/state", 1))
    assert Instances(migrated).claim_unfinished(me) == ["old"]
