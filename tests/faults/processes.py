"""Processes of one test run, found by a token in their environment.

Every server a fault test starts gets ``FAULTS_RUN_TOKEN=<uuid>`` in its environment, and so
does every command its builds run, even one that left the server's process tree (a daemon in a
session of its own, the commands a SIGKILLed server orphaned). Selecting by this token keeps
the checks and the clean-up to this run's own processes: another test run on the machine, with
its own token, is never looked at as a leak or killed.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from dataclasses import dataclass
from pathlib import Path

from tests.procfs import stat_fields

TOKEN_VARIABLE = "FAULTS_RUN_TOKEN"


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    start: str  # clock ticks since boot: with the pid, names one process even if pids recycle
    argv: tuple[str, ...]


def read(pid: int) -> Process | None:
    fields = stat_fields(pid)
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if fields is None or fields[0] == "Z":  # exited, waiting for its parent: runs nothing
        return None
    return Process(pid, int(fields[1]), fields[19],
                   tuple(a.decode(errors="replace") for a in argv if a))


def alive(process: Process) -> bool:
    current = read(process.pid)
    return current is not None and current.start == process.start


def tagged(token: str) -> list[Process]:
    """Live processes started with this run's token in their environment."""
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in environment and (process := read(int(entry.name))) is not None:
            found.append(process)
    return found


def kill_tagged(token: str, wait_ms: int = 10_000) -> None:
    """SIGKILL this run's processes and wait (bounded) until they have exited, so none still
    holds a file on a filesystem about to be unmounted. Each is signalled through a pidfd
    after its start time was checked: a recycled pid is never hit."""
    for process in tagged(token):
        try:
            handle = os.pidfd_open(process.pid)
        except OSError:
            continue
        try:
            if alive(process):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(handle, signal.SIGKILL)
                exited = select.poll()  # readable once the process has exited
                exited.register(handle, select.POLLIN)
                exited.poll(wait_ms)
        finally:
            os.close(handle)
