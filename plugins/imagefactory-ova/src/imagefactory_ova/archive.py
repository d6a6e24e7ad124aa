"""OVA archives: a tar of the OVF descriptor, its manifest and the files it references.

DSP0243 fixes the order: the descriptor first, then the manifest, then the files in the order
of the descriptor's ``References``, so an importer can stream the archive. The manifest lists
the SHA-256 digest of the descriptor and of every file (``SHA256(name)= hex``, as OVF 2.0 and
vSphere 6.5 and later read it). Files are copied into the archive by the kernel
(``copy_file_range``), in steps between which cancellation is checked.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BLOCK = 512
STEP = 256 * 1024 * 1024
CHUNK = 4 * 1024 * 1024
Check = Callable[[], None]


@dataclass(frozen=True)
class Member:
    """Where a file lies in an archive: its data starts at `offset` and is `size` bytes."""

    name: str
    offset: int
    size: int


def sha256(path: Path, check: Check) -> str:
    """The SHA-256 of a file, read in chunks; `check` runs before each one (and may raise)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while True:
            check()
            chunk = stream.read(CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)


def manifest(entries: list[tuple[str, str]]) -> bytes:
    """The manifest text of (name, SHA-256 hex digest) pairs."""
    return "".join(f"SHA256({name})= {digest}\n" for name, digest in entries).encode()


def write_ova(target: Path, descriptor_name: str, descriptor: bytes,
              files: list[tuple[str, Path]], check: Check) -> dict[str, str]:
    """Write the OVA `target`: `descriptor` as `descriptor_name`, its manifest (same name,
    ``.mf``), then `files` ((name in the archive, path) in the descriptor's order). Returns
    the manifest's digests by name."""
    digests = {descriptor_name: hashlib.sha256(descriptor).hexdigest()}
    for name, path in files:
        digests[name] = sha256(path, check)
    manifest_name = descriptor_name.rsplit(".", 1)[0] + ".mf"
    text = manifest(list(digests.items()))
    mtime = int(time.time())
    with target.open("wb") as out:
        _member(out, descriptor_name, len(descriptor), mtime)
        out.write(descriptor)
        _pad(out)
        _member(out, manifest_name, len(text), mtime)
        out.write(text)
        _pad(out)
        for name, path in files:
            with path.open("rb") as source:
                size = os.fstat(source.fileno()).st_size
                _member(out, name, size, mtime)
                out.flush()
                _copy(source, out, size, check)
            _pad(out)
        out.write(b"\0" * 2 * BLOCK)  # the end-of-archive marker
    return digests


def members(path: Path) -> dict[str, Member]:
    """The regular files of the archive `path` by name, with where their data lies."""
    with tarfile.open(path, "r:") as archive:
        return {info.name: Member(info.name, info.offset_data, info.size)
                for info in archive.getmembers() if info.isreg()}


def _member(out: BinaryIO, name: str, size: int, mtime: int) -> None:
    """A member's header; POSIX.1-2001 (pax) adds an extended header only where ustar's
    fields are too small (files of 8 GiB and more)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    out.write(info.tobuf(format=tarfile.PAX_FORMAT))


def _pad(out: BinaryIO) -> None:
    position = out.tell()
    if position % BLOCK:
        out.write(b"\0" * (BLOCK - position % BLOCK))


def _copy(source: BinaryIO, out: BinaryIO, size: int, check: Check) -> None:
    """Copy `size` bytes from `source`'s position to `out`'s, in the kernel: copy_file_range
    (which may share extents), else sendfile (another filesystem on an older kernel)."""
    src, dst = source.fileno(), out.fileno()
    by_range = True
    left = size
    while left:
        check()
        step = min(left, STEP)
        try:
            copied = (os.copy_file_range(src, dst, step) if by_range
                      else os.sendfile(dst, src, None, step))
        except OSError as error:
            if not by_range or error.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS,
                                                       errno.EOPNOTSUPP):
                raise
            by_range = False
            continue
        if copied == 0:
            raise OSError(f"{source.name} ended {left} bytes early")
        left -= copied
    out.seek(0, os.SEEK_END)
