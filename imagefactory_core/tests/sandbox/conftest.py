"""Fixtures for the sandbox tests: tiny busybox trees, a static break-out helper, and a way
to run a command in a sandbox and see what happened."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from imagefactory_core.sandbox import (
    IdRange,
    SandboxLimits,
    SandboxSpec,
    shift_into_range,
    subordinate_ids,
    wrap,
)

from tests.parallel_runs import processes_of_uids

BUSYBOX = Path("/bin/busybox")
HERE = Path(__file__).parent

def range_processes(ids: IdRange) -> list[int]:
    """Host pids of processes running as an id of the sandbox range (but the builds a test on
    another xdist worker runs)."""
    return processes_of_uids(ids.uid, ids.count)


@pytest.fixture(scope="session")
def ids() -> IdRange:
    if not BUSYBOX.exists() or shutil.which("newuidmap") is None:
        pytest.skip("busybox-static and uidmap are needed: run scripts/bootstrap.sh test")
    return subordinate_ids()


@pytest.fixture(scope="session")
def escape_helper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static C break-out helper (tests/sandbox/escape.c), compiled once."""
    binary = tmp_path_factory.mktemp("escape") / "escape"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(binary), str(HERE / "escape.c")],
                   check=True)
    return binary


def make_tree(path: Path, ids: IdRange, helper: Path) -> Path:
    """A minimal image tree: busybox with its applets, the helper, owned by the range."""
    (path / "bin").mkdir(parents=True)
    for directory in ("etc", "root", "tmp", "mnt"):
        (path / directory).mkdir()
    shutil.copy2(BUSYBOX, path / "bin" / "busybox")
    shutil.copy2(helper, path / "bin" / "escape")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (path / "bin" / applet).symlink_to("busybox")
    (path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (path / "etc" / "group").write_text("root:x:0:\n")
    shift_into_range(path, ids)
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, ids: IdRange, escape_helper: Path) -> Path:
    """A tree shared by a module's tests (for tests that leave it as they found it)."""
    return make_tree(tmp_path_factory.mktemp("shared") / "tree", ids, escape_helper)


@pytest.fixture
def fresh_tree(tmp_path: Path, ids: IdRange, escape_helper: Path) -> Path:
    return make_tree(tmp_path / "tree", ids, escape_helper)


@pytest.fixture
def in_range() -> Callable[[IdRange], list[int]]:
    return range_processes


@pytest.fixture
def run_sandbox() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `argv` in the sandbox `spec`; returns the completed process (text output)."""

    def run(spec: SandboxSpec, argv: Sequence[str], timeout: float = 60,
            **limits: object) -> subprocess.CompletedProcess[str]:
        if limits:
            spec = replace(spec, limits=replace(spec.limits, **limits))
        return subprocess.run(wrap(spec, argv), capture_output=True, text=True,
                              timeout=timeout, start_new_session=True)

    return run


@pytest.fixture
def small_limits() -> SandboxLimits:
    return SandboxLimits(memory_mib=256, processes=64, wall_seconds=60)


@pytest.fixture(autouse=True)
def nothing_left_running(ids: IdRange) -> Iterator[None]:
    """Every test ends with no process of the range left on the host."""
    yield
    for _ in range(100):
        left = range_processes(ids)
        if not left:
            return
        os.sched_yield()
        subprocess.run(["sleep", "0.05"])
    pytest.fail(f"processes left in the sandbox range: {left}")
