"""Image records in the metadata database, and their bodies and logs in storage.

Each change is committed before the method returns, so whatever the API shows has been
persisted. Bodies are ``<uuid>.body``, build logs ``<uuid>.log`` in the configured `Storage`
(the directory ``storage_path`` by default); jobs get them as local files through `bodies`
and `logs` (see `imagefactory_core.storage`).

With a `RecordCache` (embedded mode: this process is the database's only writer), `get` and
`refs` answer from memory, and every method that writes tells the cache after its commit.
"""

from __future__ import annotations

import functools
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, and_, bindparam, case, insert, select, update

from ..errors import NotFound
from ..model import ImageKind, ImageRecord, ImageRef, Outcome, Status, StatusDetail
from ..storage import BodyCache, LocalStorage, LogMirror, Storage
from .cache import RecordCache
from .schema import images
from .sealing import Sealer

_JSON_COLUMNS = ("parameters", "properties")
# Status polls and listings are the API's hot path. Their statements are built once: building a
# select of the whole table costs SQLAlchemy more than SQLite takes to run it (bench/api_load).
_BY_ID = select(images).where(images.c.id == bindparam("image_id"))


@functools.cache
def _refs_query(links: tuple[str, ...], include_deleted: bool) -> Select[Any]:
    query = select(images.c.id).where(images.c.kind == bindparam("kind"))
    for column in links:
        query = query.where(images.c[column] == bindparam(column))
    if not include_deleted:
        query = query.where(images.c.status != Status.DELETED.value)
    return query.order_by(images.c.created_at)


# The images made from one (a base's targets, a target's provider images): their kind, and
# their column naming it.
_CHILDREN = {ImageKind.BASE: (ImageKind.TARGET, "base_image_id"),
             ImageKind.TARGET: (ImageKind.PROVIDER, "target_image_id")}


@functools.cache
def _with_children_query(kind: ImageKind) -> Select[Any]:
    """One image's row once for each of its children (ids as `child_id`, oldest first), or
    once with `child_id` NULL when it has none."""
    child_kind, link = _CHILDREN[kind]
    child = images.alias("child")
    joined = images.outerjoin(child, and_(child.c.kind == child_kind.value,
                                          child.c[link] == images.c.id,
                                          child.c.status != Status.DELETED.value))
    return (select(images, child.c.id.label("child_id")).select_from(joined)
            .where(images.c.id == bindparam("image_id")).order_by(child.c.created_at))


DEFAULT_MAX_LOG_BYTES = 64 * 1024 * 1024
DEFAULT_CACHE_BYTES = 8192 * 1024 * 1024
DEFAULT_LOG_UPLOAD_SECONDS = 10.0
# Room kept at the end of a full log for the line saying it was truncated.
_TRUNCATION_ROOM = 256
CLOSING_LINE_BYTES = 4096


class ImageStore:
    def __init__(self, engine: Engine, storage_dir: Path, sealer: Sealer, *,
                 max_log_bytes: int = DEFAULT_MAX_LOG_BYTES, cache: RecordCache | None = None,
                 storage: Storage | None = None, cache_bytes: int = DEFAULT_CACHE_BYTES,
                 log_upload_seconds: float = DEFAULT_LOG_UPLOAD_SECONDS,
                 owner: str | None = None):
        """`cache` only when no other process writes the database (see `store.cache`).
        `storage` keeps bodies and logs (default: the directory `storage_dir`); with object
        storage, `storage_dir` holds this worker's local copies, `cache_bytes` of bodies.
        `owner`: this service's instance id, recorded with every image it creates and every
        status it writes (the images' `owner`, see `store.instances`)."""
        self.engine = engine
        self.storage_dir = storage_dir
        self.sealer = sealer
        self.max_log_bytes = max_log_bytes
        self.cache = cache
        self.owner = owner
        storage_dir.mkdir(parents=True, exist_ok=True)
        self.storage = storage or LocalStorage(storage_dir)
        self.bodies = BodyCache(self.storage, storage_dir, cache_bytes)
        self.logs = LogMirror(self.storage, storage_dir, log_upload_seconds)

    # -- paths ------------------------------------------------------------------------------------
    def body_path(self, image_id: str) -> Path:
        """The body as a local file: the stored one, or this worker's copy (`bodies`)."""
        return self.bodies.path(image_id)

    def log_path(self, image_id: str) -> Path:
        """The local file the log is appended to (the stored one by default)."""
        return self.logs.path(image_id)

    def append_log(self, image_id: str, line: str, *, closing: bool = False) -> None:
        """Append a time-stamped line, unless the log is full (`max_log_bytes`): the line that
        would cross the limit is cut there and followed by one saying the log was truncated,
        and later lines are dropped, so a chatty or hostile build cannot fill the disk.

        `closing` lines (the engine's reason and final status) are written even to a full log,
        each cut to `CLOSING_LINE_BYTES`: a reader must always learn how the build ended."""
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        data = f"{stamp} {line}\n".encode("utf-8", "backslashreplace")
        # closing lines reach storage before the status they explain is recorded
        with self.logs.appending(image_id, publish=closing) as path, path.open("ab") as handle:
            room = (CLOSING_LINE_BYTES if closing
                    else self.max_log_bytes - _TRUNCATION_ROOM - handle.tell())
            if len(data) <= room:
                handle.write(data)
            elif closing:
                handle.write(_whole_characters(data[:room - 1]) + b"\n")
            elif room > 0:
                handle.write(_whole_characters(data[:room]) + f"\n{stamp} [imagefactory: log "
                             f"truncated at {self.max_log_bytes} bytes (configuration key "
                             "max_log_bytes); later lines are not kept]\n".encode())

    # -- records ----------------------------------------------------------------------------------
    def _record(self, row: Any) -> ImageRecord:
        return ImageRecord(
            id=row.id,
            kind=ImageKind(row.kind),
            status=Status(row.status),
            percent_complete=row.percent_complete,
            status_detail=StatusDetail(row.activity, row.error),
            template=row.template,
            parameters=json.loads(row.parameters),
            icicle=row.icicle,
            body_path=self.body_path(row.id),
            base_image_id=row.base_image_id,
            target_image_id=row.target_image_id,
            target=row.target,
            provider=row.provider,
            identifier_on_provider=row.identifier_on_provider,
            provider_account_identifier=row.provider_account_identifier,
            properties=json.loads(row.properties),
        )

    def create(
        self,
        kind: ImageKind,
        *,
        redacted_template: str | None,
        parameters: dict[str, Any],
        sealed: str,
        activity: str = "Initializing image prior to Cloud/OS customization",
        **links: str | None,
    ) -> ImageRecord:
        """Insert a NEW image. `sealed` (the job's plan: the template and parameters in clear,
        callback URLs) is stored sealed only; `redacted_template` and `parameters` must already
        be free of secrets."""
        now = datetime.now(UTC)
        image_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(insert(images).values(
                id=image_id, kind=kind.value, status=Status.NEW.value, percent_complete=0,
                activity=activity, error=None, template=redacted_template,
                sealed=self.sealer.seal(sealed),
                parameters=json.dumps(parameters), properties="{}",
                created_at=now, updated_at=now, owner=self.owner, **links,
            ))
        if self.cache is not None:
            self.cache.forget_group(kind)
        return self.get(image_id)

    def get(self, image_id: str, kind: ImageKind | None = None) -> ImageRecord:
        if self.cache is not None:
            record = self.cache.get(image_id, lambda: self._load(image_id), _record_cost)
        else:
            record = self._load(image_id)
        if record is None or (kind is not None and record.kind is not kind):
            raise _not_found(image_id, kind)
        return record

    def get_with_children(self, image_id: str,
                          kind: ImageKind) -> tuple[ImageRecord, list[ImageRef] | None]:
        """An image and what `refs` lists of the images made from it (a base's target images,
        a target's provider images; None for a provider image): what a status poll shows.
        Without a cache, one query: about 60 % of the cost of `get` and `refs`
        (docs/reliability.md)."""
        if kind not in _CHILDREN:
            return self.get(image_id, kind), None
        child_kind, link = _CHILDREN[kind]
        if self.cache is not None:
            return self.get(image_id, kind), self.refs(child_kind, **{link: image_id})
        with self.engine.connect() as conn:
            rows = conn.execute(_with_children_query(kind), {"image_id": image_id}).all()
        if not rows or rows[0].kind != kind.value:
            raise _not_found(image_id, kind)
        return self._record(rows[0]), [ImageRef(row.child_id, child_kind) for row in rows
                                       if row.child_id is not None]

    def _load(self, image_id: str) -> ImageRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(_BY_ID, {"image_id": image_id}).first()
        return None if row is None else self._record(row)

    def list(self, kind: ImageKind, *, include_deleted: bool = False,
             **links: str) -> list[ImageRecord]:
        query = select(images).where(images.c.kind == kind.value)
        for column, value in links.items():
            query = query.where(images.c[column] == value)
        if not include_deleted:
            query = query.where(images.c.status != Status.DELETED.value)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(images.c.created_at)).all()
        return [self._record(row) for row in rows]

    def refs(self, kind: ImageKind, *, include_deleted: bool = False,
             **links: str) -> list[ImageRef]:
        """Which images `list` would return, oldest first, without loading them."""
        if self.cache is None:
            return list(self._load_refs(kind, include_deleted, links))
        key = (kind, include_deleted, tuple(sorted(links.items())))
        refs = self.cache.get(key, lambda: self._load_refs(kind, include_deleted, links),
                              lambda found: 64 + 64 * len(found), group=kind)
        return list(refs or ())

    def _load_refs(self, kind: ImageKind, include_deleted: bool,
                   links: dict[str, str]) -> tuple[ImageRef, ...]:
        query = _refs_query(tuple(sorted(links)), include_deleted)
        with self.engine.connect() as conn:
            ids = conn.execute(query, {"kind": kind.value, **links}).scalars().all()
        return tuple(ImageRef(image_id, kind) for image_id in ids)

    def sealed(self, image_id: str) -> str:
        """The text given to `create` as `sealed` (``{}`` when there was none)."""
        with self.engine.connect() as conn:
            token = conn.execute(select(images.c.sealed).where(images.c.id == image_id)).scalar()
        return self.sealer.unseal(token) if token else "{}"

    def update(self, image_id: str, **values: Any) -> ImageRecord:
        """Change columns of one image; status values may be `Status` members."""
        for column in _JSON_COLUMNS:
            if column in values:
                values[column] = json.dumps(values[column])
        if isinstance(values.get("status"), Status):
            values["status"] = values["status"].value
        if "status" in values and self.owner is not None:
            values["owner"] = self.owner
        values["updated_at"] = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(update(images).where(images.c.id == image_id).values(**values))
        if self.cache is None:
            return self.get(image_id)
        self.cache.forget(image_id)
        record = self.get(image_id)
        if "status" in values:  # DELETED images leave their kind's listings
            self.cache.forget_group(record.kind)
        return record

    def finish(self, image_id: str, outcome: Outcome) -> ImageRecord:
        """Record how a job ended: its final status and what it made."""
        values: dict[str, Any] = {"status": outcome.status, "activity": outcome.activity,
                                  "error": outcome.error}
        if outcome.status is Status.COMPLETE:
            values["percent_complete"] = 100
        for column in ("icicle", "properties", "identifier_on_provider",
                       "provider_account_identifier"):
            if getattr(outcome, column) is not None:
                values[column] = getattr(outcome, column)
        return self.update(image_id, **values)

    def set_progress(self, image_id: str, percent: int, activity: str | None) -> None:
        """Raise percent_complete (never lower it) and, if given, change the activity."""
        percent = max(0, min(percent, 100))
        values: dict[str, Any] = {
            "percent_complete": case((images.c.percent_complete < percent, percent),
                                     else_=images.c.percent_complete),
            "updated_at": datetime.now(UTC),
        }
        if activity:
            values["activity"] = activity
        with self.engine.begin() as conn:
            conn.execute(update(images).where(images.c.id == image_id).values(**values))
        if self.cache is not None:
            self.cache.forget(image_id)

    def remove_files(self, image_id: str) -> None:
        """Delete the body (the log stays: it explains what happened)."""
        self.bodies.remove(image_id)


def _not_found(image_id: str, kind: ImageKind | None) -> NotFound:
    return NotFound(f"{kind.value if kind else 'image'} {image_id} not found")


def _record_cost(record: ImageRecord) -> int:
    """Roughly the bytes a cached record holds: its texts, and room for the rest."""
    return 1024 + sum(len(text or "") for text in (record.template, record.icicle)) + len(
        json.dumps(record.parameters)) + len(json.dumps(record.properties))


def _whole_characters(data: bytes) -> bytes:
    """`data` cut short of a UTF-8 character the cut split."""
    return data.decode("utf-8", "ignore").encode()
