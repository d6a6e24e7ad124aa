"""The service's claim on its state directory: one service per state directory.

Two services on one state directory would each take the other's running builds for the
leftovers of a crash and "recover" them (a second ``imagefactory serve`` started by mistake on
the default directory deleted the first's build's work directory). The build engine holds an
exclusive lock on ``state_dir/service.lock`` for as long as it runs; the file says who holds
it. The kernel drops the lock when the holder dies, so a crashed service never blocks the next.

`serve` takes the lock itself, before it answers, and hands it to the build worker it starts
(an inherited descriptor, `inherited`): the directory stays claimed while that worker starts,
and while a worker that exited waits to be started again.

The lock guards one host's directory. Services on several hosts that share a PostgreSQL
database tell their images apart by the state directory's instance id (`instance_id`), which
the database's records carry (store/instances.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
import uuid
from pathlib import Path

from .errors import InvalidRequest

LOCK_FILE = "service.lock"
INSTANCE_FILE = "instance.id"


class StateLock:
    """Held from construction until `release`; raises `InvalidRequest` naming the holder when
    another process holds it."""

    def __init__(self, state_dir: Path) -> None:
        path = state_dir / LOCK_FILE
        self._shared = False  # see `inherited`
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 512).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            self._fd = None
            raise InvalidRequest(f"state directory {state_dir} is in use by {holder}: stop that "
                                 "service first, or give this one another state_dir") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"imagefactory pid {os.getpid()} on {socket.gethostname()} since "
                           f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n".encode())

    @classmethod
    def inherited(cls, fd: int, state_dir: Path) -> StateLock:
        """The lock `serve` holds on `state_dir`, handed to this process as descriptor `fd`
        (the same open file, so the same lock). Not passed on further: a command a build runs
        must not keep the directory claimed after the service is gone."""
        path = state_dir / LOCK_FILE
        try:
            given, expected = os.fstat(fd), os.stat(path)
            if (given.st_dev, given.st_ino) != (expected.st_dev, expected.st_ino):
                raise InvalidRequest(f"descriptor {fd} is not {path}")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidRequest(f"descriptor {fd} does not hold the lock on {path}") from None
        except OSError as exc:
            raise InvalidRequest(f"the state lock handed to this process: {exc}") from None
        os.set_inheritable(fd, False)
        lock = cls.__new__(cls)
        lock._fd, lock._shared = fd, True
        return lock

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the state lock is released")
        return self._fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Release the lock; an inherited one stays with the process that handed it on (an
        unlock would release it for that process too: they share the open file)."""
        if self._fd is not None:
            if not self._shared:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def instance_id(state_dir: Path) -> str:
    """The id of the service that runs on `state_dir`: made at its first start, the same at
    every later one (a restarted service recovers its own unfinished images)."""
    path = state_dir / INSTANCE_FILE
    if not path.exists():
        made = path.with_name(f"{INSTANCE_FILE}.{os.getpid()}")
        made.write_text(f"{uuid.uuid4()}\n")
        try:
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile
                os.link(made, path)
        finally:
            made.unlink()
    return path.read_text().strip()
