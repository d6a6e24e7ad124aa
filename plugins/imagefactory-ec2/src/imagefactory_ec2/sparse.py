"""Reading and copying disk images without touching their holes.

A 10 GiB image holding 1 GiB of data should cost 1 GiB of reads, not 10. ``SEEK_DATA`` and
``SEEK_HOLE`` (ext4, xfs, btrfs, tmpfs …) say where the data is in a few system calls; a
filesystem that cannot say is treated as all data, which is slower but still correct.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from imagefactory_core.plugin import BuildContext

COPY_CHUNK = 64 * 1024 * 1024
_NO_SEEK_DATA = (errno.EINVAL, errno.EOPNOTSUPP)
_NO_COPY_FILE_RANGE = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` byte ranges of `fd` that may hold data, in order."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole after offset
                return
            if exc.errno in _NO_SEEK_DATA:
                yield offset, size
                return
            raise
        if start >= size:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        offset = end


def block_ranges(extents: Iterable[tuple[int, int]], block_size: int) -> list[range]:
    """The indices of the `block_size` blocks that overlap any extent, as merged ranges."""
    ranges: list[range] = []
    for start, end in extents:
        first, stop = start // block_size, (end + block_size - 1) // block_size
        if ranges and first <= ranges[-1].stop:
            ranges[-1] = range(ranges[-1].start, max(stop, ranges[-1].stop))
        else:
            ranges.append(range(first, stop))
    return ranges


def copy_sparse(ctx: BuildContext, source: Path, destination: Path) -> None:
    """Copy `source` to `destination` keeping its holes, reporting progress over the data."""
    with open(source, "rb") as src, open(destination, "wb") as dst:
        size = os.fstat(src.fileno()).st_size
        extents = list(data_extents(src.fileno(), size))
        total = sum(end - start for start, end in extents) or 1
        copied = 0
        in_kernel = True
        for start, end in extents:
            offset = start
            while offset < end:
                ctx.check_cancelled()
                count = min(COPY_CHUNK, end - offset)
                if in_kernel:
                    try:
                        count = os.copy_file_range(src.fileno(), dst.fileno(), count,
                                                   offset, offset)
                    except OSError as exc:
                        if exc.errno not in _NO_COPY_FILE_RANGE:
                            raise
                        in_kernel = False
                        continue
                else:
                    count = os.pwrite(dst.fileno(), os.pread(src.fileno(), count, offset), offset)
                if count == 0:
                    raise OSError(f"{source} changed size while it was being copied")
                offset += count
                copied += count
                ctx.progress(100.0 * copied / total)
        dst.truncate(size)
