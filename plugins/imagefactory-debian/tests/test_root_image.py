"""The root file system written from the JEOS tree's cached image and the build's upper layer
(rootimage.py) holds exactly what ``mkfs.ext4 -d`` of the merged tree holds.

Each test makes a small lower tree, mounts the build's overlay over it as a build does, changes
the merged tree from a sandbox (as a template's commands would), then writes the root file
system both ways and compares them, mounted read-only.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian_plugin_testing import mounted_root
from imagefactory_core.plugin import BuildCancelled
from imagefactory_core.testing import RecordingBuildContext, make_build_context
from imagefactory_debian import rootimage
from imagefactory_debian.disk import ROOT_START, Layout, make_root_fs, partition
from imagefactory_debian.namespace import PrivateMounts
from imagefactory_debian.overlay import Overlay
from imagefactory_debian.releases import architecture
from imagefactory_debian.rootimage import image_of, prepare_disk, update_root_fs

UUID = "3d2c6a4e-0b7f-4a53-9f0c-1c1e7d2b9a10"
X86_64 = architecture("x86_64")
FREED_MARKER = b"FREED-BLOCK-MARKER-7f3a"  # in lower files the change removes
# A file capability (version 2: cap_net_raw permitted and effective) as setcap writes it.
CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)

CHANGES = r"""
set -e
cd /tree
rm etc/shadow-old
echo 'root:$6$new:19000:0:99999:7:::' > etc/shadow
rm -r var/lib/apt/lists
mkdir -p var/lib/apt/lists/partial
rm -r opaque && mkdir opaque && echo new > opaque/only-new
rm replaced-by-dir && mkdir replaced-by-dir && echo inside > replaced-by-dir/file
rm -r dir-replaced-by-link && ln -s /etc dir-replaced-by-link
echo changed >> linked-a
ln new-file-1 new-file-2 2>/dev/null || true
echo one > new-file-1 && ln new-file-1 new-file-2 && ln new-file-1 deep/er/new-file-3
mkdir -p 'new dir/with "quotes" and \back\slash'
echo q > 'new dir/with "quotes" and \back\slash/é ü'
ln -s '../target with space' 'new dir/link'
mkfifo new-fifo
echo bytes > "$(printf 'latin-1 \351t\351')"
chown 1000:1000 etc/owned && chmod 4751 etc/owned
chmod 0700 deep && chown 7:8 deep
truncate -s 64M sparse-new && echo end >> sparse-new
python3 -c 'import os, sys; os.setxattr("usr/bin/capped-new", "security.capability",
                                         bytes.fromhex(sys.argv[1]))' __CAP__
python3 -c 'import os; os.setxattr("etc/owned", "user.note", b"kept")'
python3 -c 'import os; os.removexattr("with-xattr-dir", "user.drop")'
touch -d '2001-02-03 04:05:06' etc/owned
"""


def _lower(root: Path) -> Path:
    """A small root tree made by host root, with image ids, as mmdebstrap's are."""
    tree = root / "lower"
    for directory in ("etc", "usr/bin", "var/lib/apt/lists/partial", "opaque/sub",
                      "dir-replaced-by-link/sub", "deep/er", "with-xattr-dir"):
        (tree / directory).mkdir(parents=True, exist_ok=True)
    (tree / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (tree / "etc/shadow-old").write_bytes(FREED_MARKER * 1000)
    (tree / "var/lib/apt/lists/big_Packages").write_bytes(FREED_MARKER * 100_000)
    (tree / "opaque/old").write_text("old")
    (tree / "opaque/sub/old").write_text("old")
    (tree / "dir-replaced-by-link/sub/file").write_text("x")
    (tree / "replaced-by-dir").write_text("a file first")
    (tree / "linked-a").write_text("hard linked\n")
    os.link(tree / "linked-a", tree / "linked-b")
    (tree / "etc/owned").write_text("owned\n")
    (tree / "usr/bin/capped").write_bytes(b"\x7fELF")
    os.setxattr(tree / "usr/bin/capped", "security.capability", CAPABILITY)
    (tree / "usr/bin/capped-new").write_bytes(b"\x7fELF")
    os.setxattr(tree / "with-xattr-dir", "user.drop", b"x")
    os.setxattr(tree / "with-xattr-dir", "user.keep", b"y")
    (tree / "vmlinuz").write_bytes(b"kernel")
    (tree / "initrd.img").write_bytes(b"initramfs")
    os.symlink("vmlinuz", tree / "vmlinuz.old")
    os.chown(tree / "deep/er", 5, 6)
    return tree


@pytest.fixture
def built(tmp_path: Path) -> Iterator[tuple[RecordingBuildContext, PrivateMounts, Overlay]]:
    """A build context, its private mounts and the overlay over a lower tree."""
    ctx = make_build_context(tmp_path)
    lower = _lower(tmp_path)
    ctx.adopt_tree(lower)
    with PrivateMounts() as mounts:
        layers = Overlay(lower, tmp_path / "scratch")
        layers.mount(ctx, mounts)
        yield ctx, mounts, layers


def _change(ctx: RecordingBuildContext, mounts: PrivateMounts, layers: Overlay,
            script: str) -> None:
    ctx.sandbox(None, host_tools=True, enter=mounts.enter,
                outputs=[(layers.root, "/tree")]).run(["/bin/sh", "-c", script])


def _disk(ctx: RecordingBuildContext, path: Path) -> Layout:
    layout = Layout.for_size(2 << 30)
    partition(ctx, path, layout, X86_64)
    return layout


def _listing(root: Path) -> dict[str, tuple]:
    """Every entry's kind, mode, owner, size, times (seconds), links, target, xattrs, content."""
    found: dict[str, tuple] = {}
    for directory, subdirectories, files in os.walk(root):
        for name in ["", *subdirectories, *files] if directory == str(root) else [
                *subdirectories, *files]:
            path = os.path.join(directory, name)
            relative = "/" + os.path.relpath(path, root) if name else "/"
            if relative == "/lost+found" or relative.startswith("/lost+found/"):
                continue
            info = os.lstat(path)
            xattrs = {key: os.getxattr(path, key, follow_symlinks=False)
                      for key in sorted(os.listxattr(path, follow_symlinks=False))}
            content = target = None
            if stat.S_ISREG(info.st_mode):
                content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            elif stat.S_ISLNK(info.st_mode):
                target = os.readlink(path)
            # mkfs.ext4 -d makes the root directory when it runs: its time is not the tree's
            mtime = None if relative == "/" else int(info.st_mtime)
            found[relative] = (stat.filemode(info.st_mode), info.st_uid, info.st_gid,
                               info.st_size, mtime, info.st_nlink, info.st_rdev,
                               target, xattrs, content)
    return found


def _geometry(disk: Path) -> dict[str, str]:
    header = subprocess.run(["dumpe2fs", "-h", f"{disk}?offset={ROOT_START}"],
                            capture_output=True, text=True, check=True).stdout
    fields = ("Filesystem volume name", "Filesystem UUID", "Filesystem features",
              "Inode count", "Block count", "Reserved block count", "Reserved GDT blocks",
              "Block size", "Inode size",
              "Inodes per group", "Blocks per group", "Flex block group size",
              "Default mount options", "Filesystem flags", "Default directory hash")
    values = dict(re.findall(r"^([^:\n]+):\s+(.*)$", header, re.MULTILINE))
    groups = subprocess.run(["dumpe2fs", f"{disk}?offset={ROOT_START}"], capture_output=True,
                            text=True, check=True).stdout
    return {**{field: values.get(field, "") for field in fields},
            "groups": str(groups.count("\nGroup ")),
            "groups whose inode table is not marked zeroed": str(
                len([line for line in groups.splitlines()
                     if line.startswith("Group ") and "ITABLE_ZEROED" not in line]))}


def _both(tmp_path: Path, ctx: RecordingBuildContext, mounts: PrivateMounts,
          layers: Overlay) -> tuple[Path, Path]:
    made, updated = tmp_path / "made.raw", tmp_path / "updated.raw"
    layout = _disk(ctx, made)
    make_root_fs(ctx, mounts, layers.root, made, layout.root, UUID, tmp_path / "kernel-made")
    assert prepare_disk(ctx, layers.lower, updated, layout, X86_64)  # makes the JEOS image
    assert image_of(layers.lower, layout.root.size).is_file()
    assert update_root_fs(ctx, mounts, layers, updated, layout.root, UUID,
                          tmp_path / "kernel-updated"), "\n".join(ctx.lines[-30:])
    return made, updated


def test_the_updated_root_holds_what_mkfs_of_the_merged_tree_holds(
        tmp_path: Path, built: tuple[RecordingBuildContext, PrivateMounts, Overlay]):
    ctx, mounts, layers = built
    _change(ctx, mounts, layers, CHANGES.replace("__CAP__", CAPABILITY.hex()))
    made, updated = _both(tmp_path, ctx, mounts, layers)

    with mounted_root(made) as expected_root, mounted_root(updated) as actual_root:
        expected, actual = _listing(expected_root), _listing(actual_root)
    assert "/opaque/old" not in expected and "/etc/shadow-old" not in expected  # the changes
    assert expected["/new-file-2"][5] == 3 and expected["/linked-b"][5] == 1  # ran
    differing = {path: (expected.get(path), actual.get(path))
                 for path in expected.keys() | actual.keys()
                 if expected.get(path) != actual.get(path)}
    assert differing == {}
    assert _geometry(updated) == _geometry(made)
    assert (tmp_path / "kernel-updated/vmlinuz").read_bytes() == b"kernel"
    assert any(re.match(r"root-fs-update: \d+ debugfs commands applied", line)
               for line in ctx.lines)
    subprocess.run(["e2fsck", "-fn", f"{updated}?offset={ROOT_START}"], check=True,
                   capture_output=True)


def test_blocks_the_change_freed_read_as_zeros(
        tmp_path: Path, built: tuple[RecordingBuildContext, PrivateMounts, Overlay]):
    ctx, mounts, layers = built
    _change(ctx, mounts, layers, CHANGES.replace("__CAP__", CAPABILITY.hex()))
    made, updated = _both(tmp_path, ctx, mounts, layers)
    assert FREED_MARKER not in updated.read_bytes()
    # as little disk as the made one: within the journal and metadata both write differently
    assert updated.stat().st_blocks * 512 <= made.stat().st_blocks * 512 + (8 << 20)


def test_what_debugfs_cannot_write_falls_back_to_mkfs(
        tmp_path: Path, built: tuple[RecordingBuildContext, PrivateMounts, Overlay]):
    ctx, mounts, layers = built
    _change(ctx, mounts, layers, "python3 -c 'import socket; "
                                 "socket.socket(socket.AF_UNIX).bind(\"/tree/socket\")'")
    disk = tmp_path / "disk.raw"
    layout = Layout.for_size(2 << 30)
    assert prepare_disk(ctx, layers.lower, disk, layout, X86_64)
    assert not update_root_fs(ctx, mounts, layers, disk, layout.root, UUID, tmp_path / "kernel")
    assert any("/socket: a socket" in line for line in ctx.lines)


def test_a_build_cancelled_while_the_image_is_copied_stops_copying(
        tmp_path: Path, built: tuple[RecordingBuildContext, PrivateMounts, Overlay],
        monkeypatch: pytest.MonkeyPatch):
    ctx, _, layers = built
    layout = Layout.for_size(2 << 30)
    assert prepare_disk(ctx, layers.lower, tmp_path / "first.raw", layout, X86_64)
    copies = []
    copy = os.copy_file_range

    def copy_then_cancel(*args: int) -> int:
        copies.append(args)
        ctx.cancel_event.set()
        return copy(*args)

    monkeypatch.setattr(rootimage, "PIECE", 4096)
    monkeypatch.setattr(rootimage.os, "copy_file_range", copy_then_cancel)
    with pytest.raises(BuildCancelled):
        prepare_disk(ctx, layers.lower, tmp_path / "disk.raw", layout, X86_64)
    assert len(copies) == 1
