"""What /proc says of a process, for tests that check what is left running.

``/proc/<pid>/stat`` starts with the pid and the command in brackets; the command may hold
spaces and ")" (it is the program's own choice), so the fields are those after the *last* ")".
"""

from __future__ import annotations

from pathlib import Path


def stat_fields(pid: int) -> list[str] | None:
    """The fields of `pid`'s stat after its command (state first: ``fields[0]``, parent
    ``fields[1]``, start time ``fields[19]``), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def running(pid: int) -> bool:
    """Whether `pid` runs: it exists and is not a zombie waiting to be reaped."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def parent(pid: int) -> int | None:
    fields = stat_fields(pid)
    return None if fields is None else int(fields[1])
