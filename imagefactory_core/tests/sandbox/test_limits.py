"""Limits hold: a fork bomb, a memory hog, a growing tree and a long command are stopped,
and the host goes on."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagefactory_core.sandbox import IdRange, SandboxLimits, SandboxSpec, wrap
from imagefactory_core.sandbox.limits import GROUP_PARENT, _make_group

Run = Callable[..., Any]


def test_fork_bomb_hits_the_process_limit(tree: Path, run_sandbox: Run) -> None:
    spec = SandboxSpec(root=tree, limits=SandboxLimits(processes=64, wall_seconds=30))
    result = run_sandbox(spec, ["escape", "forks"])
    assert "64 processes by" in result.stderr
    forked = int(result.stdout.split("forks: ")[1].split(",")[0])
    assert forked < 64, result.stdout
    assert subprocess.run(["true"]).returncode == 0


def test_memory_hog_hits_the_memory_limit(tree: Path, run_sandbox: Run) -> None:
    spec = SandboxSpec(root=tree, limits=SandboxLimits(memory_mib=64, wall_seconds=30))
    result = run_sandbox(spec, ["escape", "hog"])
    assert "memory 64 MiB by" in result.stderr
    reached = [int(line.split()[1]) for line in result.stdout.splitlines()
               if line.startswith("hog: ") and "failed" not in line]
    assert max(reached, default=0) <= 64
    assert result.returncode in (3, 128 + signal.SIGKILL), result.stdout


def test_growing_tree_is_stopped(fresh_tree: Path, run_sandbox: Run) -> None:
    spec = SandboxSpec(root=fresh_tree, limits=SandboxLimits(tree_mib=16,
                                                              tree_check_seconds=0.2))
    script = "dd if=/dev/zero of=/root/big bs=1M count=40 2>/dev/null; sync; sleep 20"
    started = time.monotonic()
    result = run_sandbox(spec, ["sh", "-c", script])
    assert result.returncode == 125
    assert "over its limit of 16 MiB" in result.stderr
    assert time.monotonic() - started < 10


def test_tree_over_its_limit_does_not_start(fresh_tree: Path, run_sandbox: Run) -> None:
    (fresh_tree / "root" / "big").write_bytes(b"x" * (3 * 1024 * 1024))
    result = run_sandbox(SandboxSpec(root=fresh_tree, limits=SandboxLimits(tree_mib=2)),
                         ["true"])
    assert result.returncode == 125
    assert "over its limit of 2 MiB" in result.stderr


def test_wall_clock_limit(tree: Path, run_sandbox: Run) -> None:
    started = time.monotonic()
    result = run_sandbox(SandboxSpec(root=tree, limits=SandboxLimits(wall_seconds=1)),
                         ["sleep", "30"])
    assert result.returncode == 124
    assert "wall-clock limit of 1 s" in result.stderr
    assert time.monotonic() - started < 5


def _wait_for_range(ids: IdRange, in_range: Callable[[IdRange], list[int]],
                    present: bool) -> list[int]:
    for _ in range(200):
        found = in_range(ids)
        if bool(found) == present:
            return found
        time.sleep(0.025)
    return in_range(ids)


def test_killing_the_process_group_ends_the_sandbox(tree: Path, ids: IdRange,
                                                    in_range: Callable[[IdRange], list[int]]
                                                    ) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        script = "setsid sleep 60 & (trap '' TERM HUP; sleep 60) & sleep 60"
        launcher = subprocess.Popen(wrap(SandboxSpec(root=tree), ["sh", "-c", script]),
                                    start_new_session=True, stderr=subprocess.DEVNULL)
        assert len(_wait_for_range(ids, in_range, True)) >= 1
        time.sleep(0.2)
        os.killpg(launcher.pid, sig)
        launcher.wait(timeout=10)
        assert _wait_for_range(ids, in_range, False) == [], f"left after {sig.name}"


def test_cgroups_are_removed(tree: Path, run_sandbox: Run) -> None:
    parents = [Path("/sys/fs/cgroup") / hierarchy / "imagefactory-sandbox"
               for hierarchy in ("memory", "pids", "unified", "")]
    before = {p: set(p.iterdir()) for p in parents if p.is_dir()}
    assert run_sandbox(SandboxSpec(root=tree), ["true"]).returncode == 0
    after = {p: set(p.iterdir()) for p in parents if p.is_dir()}
    for parent, entries in after.items():
        made = {e for e in entries - before.get(parent, set()) if e.is_dir()}
        assert not made, made


def test_a_concurrent_launchers_empty_group_is_not_swept_as_stale(tmp_path: Path) -> None:
    """Two builds start sandboxes at once: each launcher's new cgroup is empty until its first
    process joins, and the other launcher's sweep of stale groups must leave it alone (it did
    not, and the first launcher failed with 'cgroup.procs: No such file or directory')."""
    parent = tmp_path / GROUP_PARENT
    parent.mkdir()
    running = parent / f"sandbox-{os.getpid()}-aaaaaaaaaaaa"
    running.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = parent / f"sandbox-{dead.pid}-bbbbbbbbbbbb"
    stale.mkdir()
    made = _make_group(tmp_path, f"sandbox-{os.getpid()}-cccccccccccc")
    assert made.is_dir() and running.is_dir()
    assert not stale.exists()
