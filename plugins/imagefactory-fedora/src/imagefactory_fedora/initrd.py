"""The kickstart goes into the installer's initrd as an appended cpio archive.

The Linux kernel unpacks every archive of an initramfs in turn, each compressed or not, the
later ones over the earlier ones (``Documentation/driver-api/early-userspace``), so adding a
file needs no unpacking of the distribution's initrd: a gzip-compressed ``newc`` archive with
the file is appended, after zero padding to a four-byte boundary. Oz did the same.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterable
from pathlib import Path

_TRAILER = "TRAILER!!!"
_REGULAR = 0o100000
_DIRECTORY = 0o040000


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _entry(name: str, mode: int, data: bytes, inode: int) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    header = b"070701" + b"".join(b"%08X" % value for value in fields)
    head = header + encoded
    return head + _pad(len(head)) + data + _pad(len(data))


def cpio(files: Iterable[tuple[str, bytes, int]]) -> bytes:
    """A ``newc`` archive of (path, content, permission bits) entries, with the directories
    their paths need, owned by root."""
    out = bytearray()
    seen: set[str] = set()
    inode = 1
    for path, data, permissions in files:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in seen:
                seen.add(directory)
                out += _entry(directory, _DIRECTORY | 0o755, b"", inode)
                inode += 1
        out += _entry("/".join(parts), _REGULAR | permissions, data, inode)
        inode += 1
    out += _entry(_TRAILER, 0, b"", 0)
    return bytes(out) + _pad(len(out))


def append_files(initrd: Path, output: Path, files: Iterable[tuple[str, bytes, int]]) -> None:
    """Write `initrd` with `files` added to `output`."""
    with initrd.open("rb") as source, output.open("wb") as target:
        shutil.copyfileobj(source, target)
        target.write(_pad(target.tell()))
        target.write(gzip.compress(cpio(files), mtime=0))
