"""The JEOS cache: bare OS trees, one per recipe, shared by every build of that recipe.

Layout under ``ctx.cache_dir("debian-jeos")``::

    <key>/               a finished tree, never modified once published (builds overlay it)
    <key>.<size>.<digest>.ext4  the tree's ext4 image for a root of <size> bytes (rootimage.py)
    <key>.lock           flock: shared while a build uses <key>/, exclusive while one makes it
    .build-<key>-<uuid>/ a tree being made, renamed to <key>/ when complete
    .trash-<key>-<uuid>/ an evicted tree being deleted
    .<key>.<size>.<digest>.ext4-<uuid>  an image being made, renamed into place when complete

A tree appears under its key only complete, by rename(2). Builds of the same recipe wait for the
one making the tree and then share it; builds of different recipes do not wait for each other.
A build holds its tree's lock shared for as long as it uses the tree, so eviction (least
recently used beyond `max_entries`) never removes a tree under a running build.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imagefactory_core.plugin import BuildContext

from .locks import POLL_SECONDS, FileLock


@dataclass(frozen=True)
class JeosTree:
    path: Path
    hit: bool  # False: this build made it


class JeosCache:
    def __init__(self, root: Path, max_entries: int) -> None:
        self.root = root
        self.max_entries = max_entries

    @contextmanager
    def use(self, ctx: BuildContext, key: str,
            make: Callable[[Path], None]) -> Iterator[JeosTree]:
        """The tree of `key`, made by `make(empty_directory)` first when the cache lacks it."""
        tree = self.root / key
        lock = FileLock(self.root / f"{key}.lock")
        try:
            hit = self._hold(ctx, lock, tree, make)
            ctx.log(f"JEOS cache {'hit' if hit else 'miss'}: {key}")
            os.utime(tree)  # recently used
            if not hit:
                self._evict(ctx, keep=key)
            yield JeosTree(tree, hit)
        finally:
            lock.close()

    def _hold(self, ctx: BuildContext, lock: FileLock, tree: Path,
              make: Callable[[Path], None]) -> bool:
        """Hold `lock` shared with `tree` present, making it under an exclusive lock if needed.
        Return whether the tree was there already."""
        hit = True
        logged = False
        while True:
            if lock.try_acquire(exclusive=False):
                if tree.is_dir():
                    return hit
                if lock.try_acquire(exclusive=True):  # nobody else uses or makes it
                    if not tree.is_dir():
                        hit = False
                        self._make(ctx, tree, make)
                    continue  # take it shared
            if not logged:
                ctx.log(f"waiting for another build making JEOS {tree.name}")
                logged = True
            ctx.check_cancelled()
            time.sleep(POLL_SECONDS)

    def _make(self, ctx: BuildContext, tree: Path, make: Callable[[Path], None]) -> None:
        for stale in self.root.glob(f".build-{tree.name}-*"):  # left by a build that died
            remove_tree(stale)
        staging = self.root / f".build-{tree.name}-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            make(staging)
            staging.rename(tree)
        finally:
            if staging.exists():
                remove_tree(staging)

    def _evict(self, ctx: BuildContext, keep: str) -> None:
        trees = sorted((p for p in self.root.iterdir()
                        if p.is_dir() and not p.name.startswith(".") and p.name != keep),
                       key=lambda p: p.stat().st_mtime, reverse=True)
        for tree in trees[max(self.max_entries - 1, 0):]:
            lock = FileLock(self.root / f"{tree.name}.lock")
            try:
                if not lock.try_acquire(exclusive=True):
                    continue  # in use
                trash = self.root / f".trash-{tree.name}-{uuid.uuid4().hex}"
                tree.rename(trash)
                for image in (*self.root.glob(f"{tree.name}.*.ext4"),
                              *self.root.glob(f".{tree.name}.*.ext4-*")):
                    image.unlink(missing_ok=True)
            finally:
                lock.close()
            ctx.log(f"JEOS cache: evicted {tree.name} (least recently used)")
            remove_tree(trash)


def remove_tree(path: Path) -> None:
    """``rm -rf`` that never crosses into another file system (a forgotten mount)."""
    subprocess.run(["rm", "-rf", "--one-file-system", "--", path], check=False, timeout=600)
