"""Root in the image, an unprivileged subordinate uid on the host; files keep image owners."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.sandbox import IdRange, SandboxSpec, mkfs_ext4, wrap

from tests.procfs import parent


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (ppid := parent(int(entry.name))) is not None:
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, value in (line.split(":", 1) for line in lines)}


def _name(pid: int) -> str | None:
    """The process's name, or None when it exited since /proc was listed (``id`` is short-lived)."""
    try:
        return _status(pid)["Name"]
    except (FileNotFoundError, ProcessLookupError):  # gone before open, or between open and read
        return None


def test_root_inside_is_a_subordinate_uid_on_the_host(tree: Path, ids: IdRange) -> None:
    argv = wrap(SandboxSpec(root=tree), ["sh", "-c", "id -u; exec sleep 30"])
    launcher = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert launcher.stdout is not None
        assert launcher.stdout.readline().strip() == "0"
        for _ in range(100):  # until the shell has executed sleep
            sleepers = [pid for pid in _descendants(launcher.pid) if _name(pid) == "sleep"]
            if sleepers:
                break
            time.sleep(0.05)
        assert len(sleepers) == 1
        status = _status(sleepers[0])
        assert status["Uid"].split() == [str(ids.uid)] * 4
        assert status["Gid"].split() == [str(ids.gid)] * 4
        assert status["Groups"].split() == [str(ids.gid)]
        assert status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"
        assert int(status["CapEff"], 16) & (1 << 21) == 0  # no CAP_SYS_ADMIN
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()


def test_file_made_inside_is_the_range_on_the_host(fresh_tree: Path, ids: IdRange,
                                                   run_sandbox: Callable[..., Any]) -> None:
    result = run_sandbox(SandboxSpec(root=fresh_tree),
                         ["sh", "-c", "echo made > /root/file && stat -c '%u:%g' /root/file"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0:0"
    info = (fresh_tree / "root" / "file").stat()
    assert (info.st_uid, info.st_gid) == (ids.uid, ids.gid)


@pytest.mark.skipif(shutil.which("debugfs") is None, reason="e2fsprogs is not installed")
def test_mkfs_records_image_ids(fresh_tree: Path, tmp_path: Path,
                                run_sandbox: Callable[..., Any]) -> None:
    made = run_sandbox(SandboxSpec(root=fresh_tree),
                       ["sh", "-c", "echo x > /root/file && chown 1000:1000 /root/file"])
    assert made.returncode == 0, made.stderr
    image = tmp_path / "root.ext4"
    with image.open("wb") as handle:
        handle.truncate(32 * 1024 * 1024)
    result = subprocess.run(mkfs_ext4(fresh_tree, image), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    for path, owner in (("/root/file", "User:  1000   Group:  1000"),
                        ("/bin/busybox", "User:     0   Group:     0")):
        stat = subprocess.run(["debugfs", "-R", f"stat {path}", str(image)],
                              capture_output=True, text=True, check=True).stdout
        assert owner in stat, stat
