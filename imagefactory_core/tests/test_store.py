"""The metadata store: migrations build exactly the tables of store/schema.py; progress never goes
down; secrets are sealed at rest; every change is committed when the call returns."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from imagefactory_core.errors import BuildError, NotFound
from imagefactory_core.model import ImageKind, Status
from imagefactory_core.store import (
    ImageStore,
    RecordCache,
    Sealer,
    SqlNonceStore,
    open_database,
)
from imagefactory_core.store.database import MIGRATIONS
from imagefactory_core.store.schema import metadata

ROOTPW = "Sealed-Rootpw-31f7"
CALLBACK = "http://hook:Sealed-Cb-88d2@127.0.0.1:9/cb"
TDL = f"<template><name>t</name><os><rootpw>{ROOTPW}</rootpw></os></template>"
SEALED = json.dumps({"template": TDL, "callbacks": [CALLBACK]})


@pytest.fixture
def migrated(tmp_path: Path) -> sa.Engine:
    return open_database(f"sqlite:///{tmp_path / 'migrated.db'}")


@pytest.fixture(params=["uncached", "cached"])
def store(request: pytest.FixtureRequest, tmp_path: Path, migrated: sa.Engine) -> ImageStore:
    """Every record test runs on both stores: the embedded mode's, with a `RecordCache`, must
    behave exactly as the one without."""
    return ImageStore(migrated, tmp_path / "storage", Sealer(tmp_path / "secret.key"),
                      cache=RecordCache() if request.param == "cached" else None)


def describe(engine: sa.Engine) -> dict[str, Any]:
    """Tables, columns (type affinity, nullability, primary key) and indexes, as SQLite has them."""
    inspector = sa.inspect(engine)
    shape: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        columns = {c["name"]: (type(c["type"]).__name__, c["nullable"])
                   for c in inspector.get_columns(table)}
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        indexes = sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                         for i in inspector.get_indexes(table))
        shape[table] = {"columns": columns, "primary_key": key, "indexes": indexes}
    return shape


def create_record(store: ImageStore, **links: Any) -> str:
    record = store.create(ImageKind.BASE, redacted_template=TDL.replace(ROOTPW, "*****"),
                          parameters={"callbacks": ["http://*****@127.0.0.1:9/cb"]},
                          sealed=SEALED, **links)
    return record.id


# -- schema --------------------------------------------------------------------------------------
def test_migrations_build_the_schema_of_schema_py(migrated, tmp_path):
    with migrated.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == [], differences
    declared = sa.create_engine(f"sqlite:///{tmp_path / 'declared.db'}")
    metadata.create_all(declared)
    assert describe(migrated) == describe(declared)
    assert set(describe(migrated)) == set(metadata.tables)


def test_migrations_are_at_head_and_rerunning_them_is_harmless(tmp_path):
    url = f"sqlite:///{tmp_path / 'again.db'}"
    first = open_database(url)
    shape = describe(first)
    first.dispose()
    second = open_database(url)
    assert describe(second) == shape
    with second.connect() as connection:
        version = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert version == [(ScriptDirectory(str(MIGRATIONS)).get_current_head(),)]


def test_sqlite_runs_in_wal_mode(migrated):
    with migrated.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"


# -- records -------------------------------------------------------------------------------------
def test_created_record_is_new_and_committed(store, migrated, tmp_path):
    image_id = create_record(store)
    other = sa.create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    with other.connect() as connection:
        row = connection.execute(sa.text("SELECT status, percent_complete FROM images "
                                         "WHERE id = :id"), {"id": image_id}).one()
    assert tuple(row) == ("NEW", 0)
    store.update(image_id, status=Status.BUILDING, activity="Installing")
    with other.connect() as connection:
        assert connection.execute(sa.text("SELECT status, activity FROM images WHERE id = :id"),
                                  {"id": image_id}).one() == ("BUILDING", "Installing")
    record = store.get(image_id, ImageKind.BASE)
    assert record.status is Status.BUILDING
    assert record.body_path == tmp_path / "storage" / f"{image_id}.body"


def test_get_of_an_unknown_id_or_wrong_kind_is_not_found(store):
    image_id = create_record(store)
    with pytest.raises(NotFound):
        store.get("nope")
    with pytest.raises(NotFound) as raised:
        store.get(image_id, ImageKind.TARGET)
    assert image_id in str(raised.value)


def test_list_filters_by_kind_links_and_hides_deleted(store):
    base = create_record(store)
    kept = store.create(ImageKind.TARGET, redacted_template=None, parameters={}, sealed="{}",
                        base_image_id=base, target="x").id
    gone = store.create(ImageKind.TARGET, redacted_template=None, parameters={}, sealed="{}",
                        base_image_id=base, target="x").id
    store.update(gone, status=Status.DELETED)
    assert [r.id for r in store.list(ImageKind.TARGET, base_image_id=base)] == [kept]
    assert {r.id for r in store.list(ImageKind.TARGET, include_deleted=True)} == {kept, gone}
    assert [r.id for r in store.list(ImageKind.BASE)] == [base]
    assert store.list(ImageKind.TARGET, base_image_id="other") == []


def test_percent_complete_never_decreases(store):
    image_id = create_record(store)
    seen = []
    for percent, activity in [(10, "a"), (50, "b"), (30, "c"), (50, None), (0, "d"), (99, "e"),
                              (250, "f"), (-5, "g")]:
        store.set_progress(image_id, percent, activity)
        record = store.get(image_id)
        seen.append(record.percent_complete)
        if activity:
            assert record.status_detail.activity == activity
    assert seen == [10, 50, 50, 50, 50, 99, 100, 100]
    assert seen == sorted(seen)


def test_remove_files_keeps_the_log(store):
    image_id = create_record(store)
    store.body_path(image_id).write_bytes(b"disk")
    store.append_log(image_id, "first line")
    store.append_log(image_id, "second line")
    store.remove_files(image_id)
    store.remove_files(image_id)
    assert not store.body_path(image_id).exists()
    lines = store.log_path(image_id).read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["first line", "second line"]


# -- secrets -------------------------------------------------------------------------------------
def test_secrets_are_sealed_at_rest(store, tmp_path):
    image_id = create_record(store)
    assert store.sealed(image_id) == SEALED
    assert "*****" in store.get(image_id).template
    assert ROOTPW not in json.dumps(store.get(image_id).parameters)
    for path in tmp_path.iterdir():
        if path.name.startswith("migrated.db"):
            data = path.read_bytes()
            assert ROOTPW.encode() not in data, path
            assert b"Sealed-Cb-88d2" not in data, path
    key = tmp_path / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert store.sealed(create_record(store)) == store.sealed(image_id)


def test_secrets_need_the_same_key(store, tmp_path, migrated):
    image_id = create_record(store)
    same = ImageStore(migrated, tmp_path / "storage", Sealer(tmp_path / "secret.key"))
    assert same.sealed(image_id) == SEALED
    other = ImageStore(migrated, tmp_path / "storage", Sealer(tmp_path / "other.key"))
    with pytest.raises(BuildError) as raised:
        other.sealed(image_id)
    assert "secret.key" in str(raised.value)


def test_sealer_keeps_its_key_across_restarts(tmp_path):
    first = Sealer(tmp_path / "keys" / "secret.key")
    token = first.seal("hello")
    assert b"hello" not in token
    assert Sealer(tmp_path / "keys" / "secret.key").unseal(token) == "hello"
    assert os.listdir(tmp_path / "keys") == ["secret.key"]


# -- OAuth nonces --------------------------------------------------------------------------------
def test_nonce_is_accepted_once_across_store_instances(migrated, tmp_path):
    now = int(time.time())
    first = SqlNonceStore(migrated, window=600)
    assert first.use("client1", "n-1", now) is True
    assert first.use("client1", "n-1", now) is False
    assert first.use("client2", "n-1", now) is True
    other_process = SqlNonceStore(open_database(f"sqlite:///{tmp_path / 'migrated.db'}"))
    assert other_process.use("client1", "n-1", now) is False
    assert other_process.use("client1", "n-2", now) is True
