"""Memory and process limits: a cgroup per sandbox where the host offers one, else rlimits.

Hosts differ: cgroup v2 alone, v1 alone, or a hybrid (v1 controllers at
``/sys/fs/cgroup/<controller>``, cgroup2 at ``/sys/fs/cgroup/unified`` with the controllers
still bound to v1). For each of ``memory`` and ``pids`` the launcher uses the cgroup v2
controller if it is enabled there, else the v1 hierarchy, else an rlimit set in the process
that executes the command: RLIMIT_AS (per process, so a sandbox may use a multiple of it) and
RLIMIT_NPROC (per host uid: sandboxes sharing an id range share the count). `describe` is the
line the launcher prints so the build log says which one held. The cgroup is joined before
the sandbox's cgroup namespace is made, so inside it is the root, and removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from .spec import SandboxLimits

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP_PARENT = "imagefactory-sandbox"
_V1_FILES = {"memory": ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"),
             "pids": ("pids.max",)}
_V2_FILES = {"memory": "memory.max", "pids": "pids.max"}


def _v1_mounted(hierarchy: Path) -> bool:
    return os.path.ismount(hierarchy) and (hierarchy / "cgroup.procs").is_file()


def _v2_root(cgroup_root: Path) -> Path | None:
    for candidate in (cgroup_root, cgroup_root / "unified"):
        if (candidate / "cgroup.controllers").is_file():
            return candidate
    return None


@dataclass
class AppliedLimits:
    """Where each limit is enforced; `cgroups` are the directories made for this sandbox."""

    cgroups: list[Path] = field(default_factory=list)
    rlimits: dict[int, int] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "sandbox: limits: " + ("; ".join(self.methods) or "none")

    def join(self, pid: int) -> None:
        """Put process `pid` (the sandbox's first process) in every cgroup made for it."""
        for group in self.cgroups:
            (group / "cgroup.procs").write_text(str(pid))

    def apply_rlimits(self) -> None:
        """In the process about to execute the command: the fallback limits."""
        for which, value in self.rlimits.items():
            resource.setrlimit(which, (value, value))

    def remove(self) -> None:
        """Remove the cgroups, killing whatever is left in them (nothing, normally)."""
        for group in self.cgroups:
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    for pid in (group / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), 9)
                    time.sleep(0.02)


def _make_group(hierarchy: Path, name: str) -> Path:
    parent = hierarchy / GROUP_PARENT
    parent.mkdir(exist_ok=True)
    for stale in parent.iterdir():
        if stale.is_dir() and not _launcher_alive(stale.name):
            with contextlib.suppress(OSError):
                stale.rmdir()  # left by a launcher that was killed; fails while in use
    group = parent / name
    group.mkdir()
    return group


def _launcher_alive(group_name: str) -> bool:
    """Whether the launcher that made the group `group_name` (``sandbox-<pid>-<id>``) still
    runs: a concurrent launcher's group is empty until its first process joins, and must not
    be swept away as stale meanwhile."""
    fields = group_name.split("-")
    if len(fields) != 3 or not fields[1].isdigit():
        return False
    try:
        os.kill(int(fields[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _v2_enable(root: Path, controller: str) -> bool:
    if controller not in (root / "cgroup.controllers").read_text().split():
        return False
    try:
        for directory in (root, root / GROUP_PARENT):
            directory.mkdir(exist_ok=True)
            (directory / "cgroup.subtree_control").write_text(f"+{controller}")
    except OSError:
        return False
    return True


def apply(limits: SandboxLimits, cgroup_root: Path = CGROUP_ROOT) -> AppliedLimits:
    """Make this sandbox's cgroups and decide the fallbacks (before its first process runs)."""
    applied = AppliedLimits()
    name = f"sandbox-{os.getpid()}-{os.urandom(6).hex()}"
    wanted = {"memory": (limits.memory_mib, f"memory {limits.memory_mib} MiB"),
              "pids": (limits.processes, f"{limits.processes} processes")}
    v2 = _v2_root(cgroup_root)
    v2_group: Path | None = None
    for controller, (value, text) in wanted.items():
        if value is None:
            continue
        amount = value * 1024 * 1024 if controller == "memory" else value
        if v2 is not None and _v2_enable(v2, controller):
            if v2_group is None:
                v2_group = _make_group(v2, name)
                applied.cgroups.append(v2_group)
            (v2_group / _V2_FILES[controller]).write_text(str(amount))
            applied.methods.append(f"{text} by cgroup v2")
        elif _v1_mounted(cgroup_root / controller):
            group = _make_group(cgroup_root / controller, name)
            applied.cgroups.append(group)
            for limit in _V1_FILES[controller]:  # memory+swap too, where swap is accounted
                if (group / limit).is_file():
                    (group / limit).write_text(str(amount))
            applied.methods.append(f"{text} by cgroup v1 {controller}")
        else:
            which = resource.RLIMIT_AS if controller == "memory" else resource.RLIMIT_NPROC
            applied.rlimits[which] = amount
            per = "process" if controller == "memory" else "host uid"
            applied.methods.append(f"{text} by rlimit (per {per}: no {controller} cgroup)")
    applied.rlimits[resource.RLIMIT_CORE] = 0
    return applied
