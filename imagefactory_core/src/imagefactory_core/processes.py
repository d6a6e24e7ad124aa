"""Remember the process groups a job started, so a restarted service can end them.

`BuildContext.run` starts every command in its own session (process group). If the service
is killed (SIGKILL, OOM, power), those groups keep running: an orphaned mmdebstrap would go on
writing into a work directory the re-queued build is about to reuse. Each group is recorded
with its start time (from /proc) in the job's work directory, and `kill_recorded_groups`
ends the ones still alive — checking the start time so a recycled pid is never hit.

A command can also leave processes behind that outlive it and its group: a background child
whose shell exited (the group's leader is gone, so the recorded group no longer names it), or
a daemon in a session of its own (gpg-agent, dirmngr). Every command therefore carries the
job's work directory in its environment (`JOB_VARIABLE`); `kill_job_processes` ends every
process still carrying it when the job's work directory is removed.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from pathlib import Path

RECORD = ".process-groups"
JOB_VARIABLE = "IMAGEFACTORY_JOB"
PASSES = 5  # a process may fork while the previous pass kills it
EXIT_WAIT_MS = 5000


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime in clock ticks


def record_group(workdir: Path, pid: int) -> None:
    start = _start_time(pid)
    if start is not None:
        with (workdir / RECORD).open("a") as handle:
            handle.write(f"{pid} {start}\n")


def kill_recorded_groups(workdir: Path) -> int:
    """SIGKILL every recorded group whose leader is still the process we started; return how
    many were killed."""
    try:
        lines = (workdir / RECORD).read_text().split("\n")
    except OSError:
        return 0
    killed = 0
    for line in filter(None, lines):
        pid_text, start = line.split()
        pid = int(pid_text)
        if _start_time(pid) == start:
            try:
                os.killpg(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def kill_job_processes(workdir: Path) -> int:
    """SIGKILL every process whose environment names `workdir` as its job, and wait (bounded)
    until they are gone; return how many were killed.

    Each process is held by a pidfd while its environment is read, so a pid recycled meanwhile
    is never hit. A process that rewrote its environment block (setproctitle) is not found.
    """
    tag = f"{JOB_VARIABLE}={workdir}".encode()
    killed = 0
    for _ in range(PASSES):
        handles = [handle for entry in Path("/proc").iterdir() if entry.name.isdigit()
                   and (handle := _kill_if_tagged(int(entry.name), tag)) is not None]
        for handle in handles:
            waiter = select.poll()  # a pidfd is readable once its process has exited
            waiter.register(handle, select.POLLIN)
            waiter.poll(EXIT_WAIT_MS)
            os.close(handle)
        killed += len(handles)
        if not handles:
            break
    return killed


def _kill_if_tagged(pid: int, tag: bytes) -> int | None:
    """SIGKILL `pid` if its environment holds `tag`; its pidfd, to wait on, if so."""
    try:
        handle = os.pidfd_open(pid)
    except OSError:  # gone already
        return None
    try:
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        environment = []
    if tag not in environment:
        os.close(handle)
        return None
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(handle, signal.SIGKILL)
    return handle
