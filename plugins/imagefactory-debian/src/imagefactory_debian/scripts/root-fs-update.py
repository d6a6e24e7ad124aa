"""Turn the JEOS tree's cached ext4 image, which the caller copied into the root partition of
/disk, into the image's root file system: what ``mkfs.ext4 -d`` of the merged tree would write.

Runs with the host's python3 inside a sandbox (``rootimage.py``): /lower the JEOS tree (the
overlay's lower layer), /upper the build's upper directory, both read-only, /disk the image body
and /scratch a directory, both writable. Every path is read from the sandbox, so owners and
file capabilities are the image's, as ``mkfs.ext4 -d`` run in the same sandbox would record them.

1. Plan: walk /upper and write debugfs commands that turn the lower tree into the merged one
   (whiteouts and opaque directories remove; new and copied-up entries replace, with their
   mode, owner, times, extended attributes and hard links). Nothing is written yet: when an
   entry cannot be expressed (a name with a line break, a socket), exit 3 and the caller uses
   ``mkfs.ext4 -d``.
2. Apply the plan (debugfs) and give the file system the image's UUID (tune2fs).
3. Punch holes where the file system is now free: the blocks of what the plan removed (package
   lists, the JEOS's /etc/shadow) must read as zeros, as they would in a new file system.

Usage: root-fs-update.py OFFSET UUID OPAQUE_LIST
"""

from __future__ import annotations

import ctypes
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

LOWER = Path("/lower")
UPPER = Path("/upper")
DISK = "/disk"
SCRATCH = Path("/scratch")
BLOCK = 4096
CANNOT = 3  # exit status: the upper directory has an entry this path cannot write

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02


class Unsupported(Exception):
    pass


def quoted(name: str) -> str:
    """A debugfs argument (its parser takes "..." with "" for a quote)."""
    if "\n" in name or "\r" in name or "\0" in name:
        raise Unsupported(f"a name with a line break: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def lower_entry(path: str) -> os.stat_result | None:
    try:
        return os.lstat(LOWER / path.lstrip("/"))
    except FileNotFoundError:
        return None


class Plan:
    def __init__(self, opaque: set[str]) -> None:
        self.opaque = opaque
        self.commands: list[str] = []
        self.links: dict[tuple[int, int], tuple[str, int]] = {}  # upper inode: first path, count
        self.values = 0
        self.cwd: str | None = None  # debugfs's current directory

    def chdir(self, path: str) -> None:
        """Make `path` debugfs's current directory (commands with bare names act there)."""
        if path != self.cwd:
            self.commands.append(f"cd {quoted(path)}")
            self.cwd = path

    def run(self) -> list[str]:
        self.directory("/", lower_visible=True)
        # mkfs.ext4 -d makes the root directory itself (now, root's, 0755): only its extended
        # attributes come from the tree
        now = int(time.time())
        self.commands += [f"sif / atime @{now}", f"sif / mtime @{now}"]
        self.extended_attributes("/", replaced=True)
        for first, count in self.links.values():
            if count > 1:
                self.commands.append(f"sif {quoted(first)} links_count {count}")
        return self.commands

    def directory(self, path: str, lower_visible: bool) -> None:
        """Apply the entries of the upper directory `path` (merged: present as a directory),
        whose lower children are in the image when `lower_visible`. (Its own attributes are
        its caller's to set, once its entries are written.)"""
        upper = UPPER / path.lstrip("/")
        for name in sorted(os.listdir(upper)):
            child = path.rstrip("/") + "/" + name
            info = os.lstat(upper / name)
            below = lower_entry(child) if lower_visible else None
            if is_whiteout(info):
                if below is not None:
                    self.remove(child, below)
                continue
            if stat.S_ISDIR(info.st_mode):
                keep = (below is not None and stat.S_ISDIR(below.st_mode)
                        and child not in self.opaque)
                if below is not None and not keep:
                    self.remove(child, below)
                if not keep:
                    self.chdir(path)
                    self.commands.append(f"mkdir {quoted(name)}")
                self.directory(child, lower_visible=keep)
                self.attributes(child, info, replaced_xattrs=keep)
                continue
            if below is not None:
                self.remove(child, below)
            self.entry(path, name, info)

    def entry(self, parent: str, name: str, info: os.stat_result) -> None:
        path = parent.rstrip("/") + "/" + name
        source = UPPER / path.lstrip("/")
        self.chdir(parent)
        mode = info.st_mode
        if info.st_nlink > 1 and not stat.S_ISDIR(mode):
            key = (info.st_dev, info.st_ino)
            if key in self.links:
                first, count = self.links[key]
                self.commands.append(f"ln {quoted(first)} {quoted(name)}")
                self.links[key] = (first, count + 1)
                return
            self.links[key] = (path, 1)
        if stat.S_ISREG(mode):
            self.commands.append(f"write {quoted(str(source))} {quoted(name)}")
        elif stat.S_ISLNK(mode):
            self.commands.append(f"symlink {quoted(name)} {quoted(os.readlink(source))}")
        elif stat.S_ISFIFO(mode):
            self.commands.append(f"mknod {quoted(name)} p")
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = "c" if stat.S_ISCHR(mode) else "b"
            self.commands.append(f"mknod {quoted(name)} {kind} "
                                 f"{os.major(info.st_rdev)} {os.minor(info.st_rdev)}")
        else:
            raise Unsupported(f"{path}: a socket or an unknown kind of file")
        self.attributes(path, info, replaced_xattrs=False)

    def attributes(self, path: str, info: os.stat_result, replaced_xattrs: bool) -> None:
        """Mode, owner, access and modification times (whole seconds, like mkfs.ext4 -d) and
        extended attributes of `path` as the upper entry `info` has them. A directory kept from
        the lower tree (`replaced_xattrs`) loses the attributes the upper one no longer has."""
        target = quoted(path)
        self.commands += [
            f"sif {target} mode 0{info.st_mode:o}",
            f"sif {target} uid {info.st_uid}",
            f"sif {target} gid {info.st_gid}",
            f"sif {target} atime @{int(info.st_atime)}",
            f"sif {target} mtime @{int(info.st_mtime)}",
        ]
        self.extended_attributes(path, replaced_xattrs)

    def extended_attributes(self, path: str, replaced: bool) -> None:
        target = quoted(path)
        source = UPPER / path.lstrip("/")
        names = os.listxattr(source, follow_symlinks=False)
        if replaced:
            for name in os.listxattr(LOWER / path.lstrip("/"), follow_symlinks=False):
                if name not in names:
                    self.commands.append(f"ea_rm {target} {quoted(name)}")
        for name in names:
            value = SCRATCH / f"xattr-{self.values}"
            self.values += 1
            value.write_bytes(os.getxattr(source, name, follow_symlinks=False))
            self.commands.append(f"ea_set -f {quoted(str(value))} {target} {quoted(name)}")

    def remove(self, path: str, info: os.stat_result) -> None:
        """Remove the lower entry `path` from the image (a directory with all it holds)."""
        if stat.S_ISDIR(info.st_mode):
            lower = LOWER / path.lstrip("/")
            for name in sorted(os.listdir(lower)):
                self.remove(path + "/" + name, os.lstat(lower / name))
        # by name in its directory: debugfs unlinks "/name" from its current directory
        parent, name = path.rsplit("/", 1)
        self.chdir(parent or "/")
        self.commands.append(f"{'rmdir' if stat.S_ISDIR(info.st_mode) else 'rm'} {quoted(name)}")


def run(argv: list[str]) -> str:
    """Run an e2fsprogs command; debugfs reports a failed command only on standard error."""
    done = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    errors = [line for line in done.stderr.splitlines()
              if line.strip() and not re.match(r"^(debugfs|tune2fs|dumpe2fs) \d", line)]
    if done.returncode != 0 or errors:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"{argv[0]} failed")
    return done.stdout


def punch_free_blocks(device: str, offset: int) -> None:
    """Make every free block of the file system read as zeros (a hole in /disk)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    listing = run(["dumpe2fs", device])
    fd = os.open(DISK, os.O_WRONLY)
    try:
        for ranges in re.findall(r"^\s+Free blocks: (.+)$", listing, re.MULTILINE):
            for part in ranges.split(","):
                first, _, last = part.strip().partition("-")
                start, end = int(first), int(last or first)
                if libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                  offset + start * BLOCK, (end - start + 1) * BLOCK) != 0:
                    raise OSError(ctypes.get_errno(), "fallocate(PUNCH_HOLE) of /disk")
    finally:
        os.close(fd)


def main() -> int:
    offset, uuid, opaque_list = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    opaque = {os.fsdecode(path) for path in Path(opaque_list).read_bytes().split(b"\0") if path}
    try:
        commands = Plan(opaque).run()
    except Unsupported as reason:
        print(f"root-fs-update: {reason}; the root file system is made by mkfs.ext4 -d",
              file=sys.stderr)
        return CANNOT
    script = SCRATCH / "debugfs.commands"
    # names are bytes: those that are no UTF-8 come back as they were
    script.write_text("".join(f"{command}\n" for command in commands), encoding="utf-8",
                      errors="surrogateescape")
    device = f"{DISK}?offset={offset}"
    run(["debugfs", "-w", "-f", str(script), device])
    run(["tune2fs", "-U", uuid, device])
    punch_free_blocks(device, offset)
    print(f"root-fs-update: {len(commands)} debugfs commands applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
