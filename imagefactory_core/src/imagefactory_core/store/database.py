"""Open the metadata database and bring its schema up to date with Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event, text

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory locks that serialize the services of one database, in the two-key form:
# this namespace (any constant, the same in every version), then what is locked.
LOCK_NAMESPACE = 0x1FAC7027
MIGRATION_LOCK = 1
RECOVERY_LOCK = 2
# A pooled connection older than this is replaced before use: a firewall that silently drops
# long-lived connections would make `pool_pre_ping` wait for TCP to give up on it.
RECYCLE_SECONDS = 1800


def open_database(url: str, connections: int = 5) -> Engine:
    """Create the engine and run pending migrations.

    SQLite runs in WAL mode with a busy timeout: WAL lets API threads read while a build thread
    writes; the busy timeout makes concurrent writers wait instead of failing with "database
    is locked". PostgreSQL (``postgresql+psycopg://``) connections are checked before use
    (`pool_pre_ping`: the server may have restarted) and renewed after `RECYCLE_SECONDS`;
    NUL characters in what they send become U+FFFD (`_without_nul`).

    The pool keeps `connections` open: give it the number of threads that may query at once.
    With fewer, a busy service opens and closes a connection (and runs the pragmas below) for
    about one request in eight (bench/api_load: 1372 for 11926 requests with SQLAlchemy's
    default of 5 and 16 threads).
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=connections)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
    elif url.startswith("postgresql"):
        # application_name: an operator sees the service's sessions in pg_stat_activity
        engine = create_engine(url, pool_pre_ping=True, pool_size=connections,
                               pool_recycle=RECYCLE_SECONDS,
                               connect_args={"application_name": "imagefactory",
                                             "connect_timeout": 10})
        event.listen(engine, "before_cursor_execute", _without_nul, retval=True)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=connections)
    migrate(engine)
    return engine


def _without_nul(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
                 _executemany: bool) -> tuple[str, Any]:
    """PostgreSQL refuses text holding NUL, which SQLite stores. Clients and plugins can send
    one (an image id in a URL's ``%00``, a plugin's activity): it is sent as U+FFFD, so a
    lookup finds nothing (ids never hold either) and a text is kept with the character
    replaced, instead of a query failing."""
    return statement, _replace_nul(parameters)


def _replace_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {key: _replace_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_replace_nul(item) for item in value)
    return value


def serialize(connection: Connection, lock: int) -> None:
    """Wait until no other service holds `lock` on this database, then hold it until
    `connection`'s transaction ends (PostgreSQL advisory lock). SQLite has none: its file
    belongs to one service (the state lock's), and a transaction whose first statement writes
    holds SQLite's own lock from then on."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:namespace, :lock)"),
                           {"namespace": LOCK_NAMESPACE, "lock": lock})


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision, in one transaction.

    Several services may start together on one PostgreSQL database: each waits for the
    migration lock before Alembic reads the schema's version, so the first migrates and the
    others, once it committed, find the schema at head and change nothing. (PostgreSQL runs
    DDL in transactions: a migration that fails leaves no half-made schema.)"""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        serialize(connection, MIGRATION_LOCK)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
