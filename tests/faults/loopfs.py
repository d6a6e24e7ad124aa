"""A small ext4 filesystem on a loop device, mounted under a test's directory, so a build can
fill its storage without touching the machine's disks.

`loop_mounted` always unmounts and detaches, even when the test fails or a process still has a
file open there (lazy unmount). `mounts_under` and `loop_devices_for` read what the kernel has,
scoped to the test's own paths, to prove nothing leaked.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def loop_mounted(image: Path, mountpoint: Path, mib: int) -> Iterator[Path]:
    with image.open("wb") as handle:
        handle.truncate(mib * 1024 * 1024)
    # no reserved blocks: the service runs as root and would otherwise use them too
    _run("mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", str(image))
    device = _run("losetup", "--find", "--show", str(image))
    try:
        mountpoint.mkdir(parents=True, exist_ok=True)
        _run("mount", "-t", "ext4", device, str(mountpoint))
        try:
            yield mountpoint
        finally:
            subprocess.run(["umount", str(mountpoint)], check=False, capture_output=True)
            if mountpoint in mounts_under(mountpoint):
                subprocess.run(["umount", "-l", str(mountpoint)], check=False)
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts_under(root: Path) -> list[Path]:
    found = []
    for line in Path("/proc/mounts").read_text().splitlines():
        target = Path(_unescape(line.split()[1]))
        if target == root or root in target.parents:
            found.append(target)
    return found


def loop_devices_for(root: Path) -> list[str]:
    """Loop devices whose backing file is under `root`."""
    listing = json.loads(_run("losetup", "--list", "--json", "--output", "NAME,BACK-FILE")
                         or '{"loopdevices": []}')
    return [device["name"] for device in listing["loopdevices"]
            if device.get("back-file") and (root == Path(device["back-file"])
                                            or root in Path(device["back-file"]).parents)]
