"""Links planted in a tree never make the launcher touch a host file."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.sandbox import Bind, SandboxSpec

Run = Callable[..., Any]


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    directory = tmp_path / "canary"
    directory.mkdir()
    (directory / "file").write_text("untouched\n")
    return directory


def _unchanged(canary: Path) -> bool:
    return sorted(p.name for p in canary.iterdir()) == ["file"] and \
        (canary / "file").read_text() == "untouched\n"


@pytest.mark.parametrize("mount_point", ["proc", "dev", "tmp", "run", "sys"])
def test_symlinked_mount_point_is_refused(fresh_tree: Path, canary: Path, run_sandbox: Run,
                                          mount_point: str) -> None:
    target = fresh_tree / mount_point
    if target.is_dir():
        shutil.rmtree(target)
    target.symlink_to(f"/{mount_point}/../../../..{canary}")
    result = run_sandbox(SandboxSpec(root=fresh_tree), ["true"])
    assert result.returncode == 125
    assert f"refusing to mount on /{mount_point}: it is a symbolic link" in result.stderr
    assert _unchanged(canary)


def test_symlinked_bind_target_is_refused(fresh_tree: Path, canary: Path, tmp_path: Path,
                                          run_sandbox: Run) -> None:
    source = tmp_path / "input"
    source.mkdir()
    (fresh_tree / "data").symlink_to(str(canary))
    spec = SandboxSpec(root=fresh_tree, inputs=(Bind(source, "/data/cache"),))
    result = run_sandbox(spec, ["true"])
    assert result.returncode == 125
    assert "refusing to mount on /data: it is a symbolic link" in result.stderr
    assert _unchanged(canary)


def test_resolv_conf_link_resolves_inside_the_tree(fresh_tree: Path, canary: Path,
                                                   run_sandbox: Run) -> None:
    (fresh_tree / "etc" / "resolv.conf").symlink_to(f"/run/../../../{canary}/file")
    result = run_sandbox(SandboxSpec(root=fresh_tree),
                         ["sh", "-c", "mkdir -p $(dirname $(readlink /etc/resolv.conf)); "
                                      "echo nameserver 10.0.0.1 > /etc/resolv.conf; "
                                      "cat /etc/resolv.conf"])
    assert result.returncode == 0, result.stderr
    assert "nameserver" in result.stdout
    assert _unchanged(canary)


def test_input_is_read_only_and_output_writable(fresh_tree: Path, tmp_path: Path,
                                                run_sandbox: Run) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "data").write_text("input\n")
    output = tmp_path / "out.img"
    output.write_bytes(b"")
    spec = SandboxSpec(root=fresh_tree, inputs=(Bind(source, "/var/cache/in"),),
                       outputs=(Bind(output, "/out.img"),))
    script = ("cat /var/cache/in/data; echo changed > /var/cache/in/data || echo ro; "
              "echo written > /out.img")
    result = run_sandbox(spec, ["sh", "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["input", "ro"]
    assert (source / "data").read_text() == "input\n"
    assert output.read_text() == "written\n"


def test_symlinked_bind_source_is_refused(fresh_tree: Path, tmp_path: Path,
                                          run_sandbox: Run) -> None:
    link = tmp_path / "link"
    link.symlink_to("/etc")
    result = run_sandbox(SandboxSpec(root=fresh_tree, inputs=(Bind(link, "/hostetc"),)),
                         ["true"])
    assert result.returncode == 125
    assert "is missing or a symbolic link" in result.stderr
