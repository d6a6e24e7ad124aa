"""Session fixture: a real Redis server (Debian's ``redis-server`` package, which
``scripts/bootstrap.sh test`` installs) on 127.0.0.1 at a free port, with nothing saved to disk,
started once per test session and stopped at its end.

* ``redis_url``: the server's base URL, ``redis://127.0.0.1:<port>``.
* ``redis_database``: that URL with a database number of its own and nothing in it, so tests
  share no queue; `flush` empties it again, as a restart of a Redis without persistence would.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_SECONDS = 30.0
DATABASES = 16  # redis-server's default `databases`
_numbers = itertools.count(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ping(port: int) -> bool:
    """Whether a Redis server answers PING on `port` (the protocol's inline form)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class Redis:
    def __init__(self, root: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("Redis is not installed: run `scripts/bootstrap.sh test` (it "
                               "installs Debian's redis-server package)")
        self.binary = binary
        self.root = root
        self.log_file = root / "redis.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:] if self.log_file.exists() else ""

    def start(self) -> Redis:
        for attempt in range(3):  # the free port may be taken before the server binds it
            self.port = free_port()
            with self.log_file.open("ab") as log:
                self.proc = subprocess.Popen(
                    [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                     "--daemonize", "no", "--save", "", "--appendonly", "no",
                     "--dir", str(self.root)],
                    cwd=self.root, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + START_SECONDS
            while self.proc.poll() is None and not ping(self.port):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not answer within {START_SECONDS} s:"
                                       f"\n{self.log()}")
                time.sleep(0.05)
            if self.proc.poll() is None:
                return self
            if attempt == 2:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n"
                                   f"{self.log()}")
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    root = Path(tempfile.mkdtemp(prefix="imagefactory-redis-"))
    server = Redis(root)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(redis_server: Redis) -> str:
    """The session's Redis server: ``redis://127.0.0.1:<port>``."""
    return redis_server.url


def flush(url: str) -> None:
    """FLUSHDB on the Redis database of `url` (``redis://127.0.0.1:<port>/<n>``): what a
    restart of a Redis without persistence does to its queues."""
    address, number = url.removeprefix("redis://").split("/")
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(f"SELECT {number}\r\nFLUSHDB\r\n".encode())
        answer = b""
        while answer.count(b"\r\n") < 2:
            answer += conn.recv(64)
    if answer != b"+OK\r\n+OK\r\n":
        raise RuntimeError(f"Redis refused FLUSHDB on {url}: {answer!r}")


@pytest.fixture
def redis_database(redis_url: str) -> str:
    """A Redis URL with a database number of its own (1 to 15, in turn), flushed first, so a
    test's queues hold no message an earlier test left."""
    url = f"{redis_url}/{next(_numbers) % (DATABASES - 1) + 1}"
    flush(url)
    return url
