"""The benchmarks' test disk: a sparse raw file with random data in a few extents, made once
and cached (benchmarks import it from bench/)."""

from __future__ import annotations

import random
from pathlib import Path

GIB = 1024**3
MIB = 1024**2


def make_disk(cache: Path, size_gib: int, data_gib: float, extents: int = 8) -> Path:
    """A sparse raw disk with `data_gib` of random bytes in `extents` runs spread over it."""
    path = cache / f"disk-{size_gib}g-{data_gib}g.raw"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2024)
    size, run = size_gib * GIB, int(data_gib * GIB) // extents
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as disk:
        disk.truncate(size)
        for n in range(extents):
            offset = n * (size // extents) + rng.randrange(0, size // extents - run, 4096)
            disk.seek(offset)
            for _ in range(0, run, 64 * MIB):
                disk.write(rng.randbytes(min(64 * MIB, run)))
    partial.rename(path)
    return path
