"""Session fixture: a real PostgreSQL server (Debian's ``postgresql`` package, which
``scripts/bootstrap.sh test`` installs) on 127.0.0.1 at a free port, in a temporary data
directory, started once per test session and stopped at its end.

PostgreSQL refuses to run as root: run by root, the server runs as the ``postgres`` system user
the package adds. Clients log in over TCP with passwords (SCRAM), as a service would.

* ``postgresql`` yields a `PostgreSQL`: ``port``, ``connect()`` (a superuser's connection),
  and ``create_database()``, which makes a fresh empty database owned by the unprivileged role
  ``imagefactory`` and returns its SQLAlchemy URL (``postgresql+psycopg://…``), so tests never
  share state.
* ``postgresql_url``: a fresh database for one test, dropped after it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import psycopg

ROLE = "imagefactory"
START_SECONDS = 60
# Durability is not what the tests check: a session's cluster is thrown away at its end.
SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
"""


def server_binaries() -> Path:
    """The newest installed PostgreSQL's bin directory."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda path: int(re.sub(r"\D", "", path.parts[-3]) or 0))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `scripts/bootstrap.sh test` (it "
                           "installs Debian's postgresql package)")
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgreSQL:
    def __init__(self, root: Path):
        self.bin = server_binaries()
        self.root = root
        self.data = root / "data"
        self.log_file = root / "server.log"
        self.port = 0
        self.admin_password = secrets.token_hex(16)
        self.password = secrets.token_hex(16)
        self._names = itertools.count(1)
        # root runs the server as the package's system user; anyone else as themselves
        self._user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *argv: str) -> None:
        done = subprocess.run([str(self.bin / argv[0]), *argv[1:]], cwd=self.root,
                              user=self._user, group=self._user, capture_output=True,
                              text=True, env={"PATH": os.environ.get("PATH", ""),
                                              "LANG": "C.UTF-8"}, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stdout}"
                               f"{done.stderr}\n{self.server_log()}")

    def server_log(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""

    def start(self) -> PostgreSQL:
        if self._user:
            shutil.chown(self.root, self._user, self._user)
        password_file = self.root / "password"
        password_file.write_text(self.admin_password + "\n")
        if self._user:
            shutil.chown(password_file, self._user, self._user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=scram-sha-256",
                  f"--pwfile={password_file}", "--encoding=UTF8", "--locale=C.UTF-8",
                  "--no-sync", "--no-instructions")
        password_file.unlink()
        defaults = (self.data / "postgresql.conf").read_text()
        for attempt in range(3):  # the free port may be taken before the server binds it
            self.port = free_port()
            (self.data / "postgresql.conf").write_text(defaults + SETTINGS.format(port=self.port))
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_file), "-w",
                          "-t", str(START_SECONDS), "start")
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        with self.connect() as admin:
            admin.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
        return self

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        """A superuser connection (autocommit) to `dbname`."""
        import psycopg  # the test requirements' (and the core's postgresql extra)

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                               password=self.admin_password, dbname=dbname, autocommit=True)

    def create_database(self) -> str:
        """A new empty database owned by the role ``imagefactory``: its SQLAlchemy URL."""
        name = f"test_{next(self._names)}"
        with self.connect() as admin:
            # copying the template's files writes less than logging its every page
            admin.execute(f"CREATE DATABASE {name} OWNER {ROLE} STRATEGY = FILE_COPY")
        return f"postgresql+psycopg://{ROLE}:{self.password}@127.0.0.1:{self.port}/{name}"

    def drop_database(self, url: str) -> None:
        """Drop a database `create_database` made, closing what is still connected to it."""
        with self.connect() as admin:
            admin.execute(f"DROP DATABASE {url.rsplit('/', 1)[1]} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PostgreSQL]:
    # Not under pytest's temporary directory: its parent is root's alone, and the server runs
    # as another user.
    root = Path(tempfile.mkdtemp(prefix="imagefactory-postgresql-"))
    server = PostgreSQL(root)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgresql_url(postgresql: PostgreSQL) -> Iterator[str]:
    """A fresh database for one test, dropped after it (a session's hundred databases would
    otherwise take their disk space until the session ends)."""
    url = postgresql.create_database()
    yield url
    postgresql.drop_database(url)
