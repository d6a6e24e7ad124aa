"""Remember the process groups a job started, so a restarted service can end them.

`BuildContext.run` starts every command in its own session (process group). If the service
is killed (SIGKILL, OOM, power), those groups keep running: an orphaned mmdebstrap would go on
writing into a work directory the re-queued build is about to reuse. Each group is recorded
with its start time (from /proc) in the job's work directory, and `kill_recorded_groups`
ends the ones still alive — checking the start time so a recycled pid is never hit.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

RECORD = ".process-groups"


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
