"""The suite can run on pytest-xdist workers, one per core, side by side (README). A host-wide
check such as "no process of the sandbox's subordinate uid range is left" must not count the
build a test on another worker runs at that moment: `not_of_other_workers` tells them apart by
ancestry (every worker is a child of the same controller process; all a test starts descends
from its worker). A process that left its worker's tree (re-parented to init) still counts: a
leak is a leak, whichever worker made it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tests.procfs import parent


def _other_workers() -> set[int]:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return set()
    controller, me = os.getppid(), os.getpid()
    pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return {pid for pid in pids if pid != me and parent(pid) == controller}


def not_of_other_workers(pids: Iterable[int]) -> list[int]:
    """`pids` but those that descend from another xdist worker of this run (or have exited)."""
    others = _other_workers()
    kept = []
    for pid in pids:
        ancestor: int | None = pid
        while ancestor not in (None, 0, 1) and ancestor not in others:
            ancestor = parent(ancestor)
        if ancestor is not None and ancestor not in others:
            kept.append(pid)
    return kept


def processes_of_uids(first: int, count: int) -> list[int]:
    """Host pids of processes whose real uid is one of `count` from `first` (a sandbox's
    subordinate range), but those of other workers' builds (`not_of_other_workers`). The uid
    is read from the status file: /proc/<pid> itself belongs to root while a process that
    changed its ids has not exec'd since (it is not "dumpable")."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:  # exited meanwhile
                continue
            uid = int(next(line for line in status.splitlines()
                           if line.startswith("Uid:")).split()[1])
            if first <= uid < first + count:
                found.append(int(entry.name))
    return not_of_other_workers(found)
