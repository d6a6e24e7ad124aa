"""The package cache: every .deb any build downloaded, reused by later builds.

One directory per (release, architecture) under ``ctx.cache_dir("debian-debs")``. While apt
runs for a build (mmdebstrap, the template's packages, a target's packages), the tree's
``/var/cache/apt/archives`` is a host directory of the build, bind-mounted in the build's private
mount namespace and filled beforehand with links to the cached files: apt checks each file
against the archive's hashes and downloads only what is missing. What it downloaded is linked
back into the cache afterwards. Downloaded packages thus never land in the tree, whatever file
system the tree is on (a JEOS directory, an overlay, a loop-mounted disk).

Concurrent builds cannot corrupt the cache: a file enters it only complete, under its final name,
by link(2), which fails instead of overwriting when another build was first. Files are never
modified in place, so hard links between the cache and build trees are safe. Packages no build
used for `max_age_days` are deleted; deleting one under a build's feet only costs a download.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imagefactory_core.plugin import BuildContext

from .namespace import PrivateMounts

DAY_SECONDS = 86400
ARCHIVES = Path("var/cache/apt/archives")


def deb_file_name(package: str, version: str, arch: str) -> str:
    """The name apt gives a downloaded package (the epoch's colon is URL-encoded)."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


class DebCache:
    def __init__(self, root: Path, codename: str, dpkg_arch: str) -> None:
        self.dir = root / f"{codename}-{dpkg_arch}"
        self.dir.mkdir(parents=True, exist_ok=True)

    def seed(self, archives: Path) -> int:
        """Make every cached package available to apt in `archives`; return how many."""
        archives.mkdir(parents=True, exist_ok=True)
        count = 0
        for cached in self.dir.glob("*.deb"):
            try:
                _link_or_copy(cached, archives / cached.name)
            except FileNotFoundError:  # pruned meanwhile
                continue
            except FileExistsError:
                pass
            count += 1
        return count

    def harvest(self, archives: Path) -> int:
        """Add the packages in `archives` that the cache lacks; return how many were new."""
        added = 0
        for deb in archives.glob("*.deb"):
            target = self.dir / deb.name
            if target.exists():
                continue
            try:
                _link_or_copy(deb, target)
            except FileExistsError:
                continue
            added += 1
        return added

    def refresh(self, used: Iterable[str], max_age_days: int) -> int:
        """Mark the package files `used` as fresh and delete the ones unused for too long;
        return how many were deleted."""
        now = time.time()
        for name in used:
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.dir / name, (now, now))
        deleted = 0
        for cached in self.dir.glob("*.deb"):
            try:
                if now - cached.stat().st_mtime > max_age_days * DAY_SECONDS:
                    cached.unlink()
                    deleted += 1
            except FileNotFoundError:
                pass
        return deleted


@contextmanager
def cached_archives(ctx: BuildContext, mounts: PrivateMounts, tree: Path, scratch: Path,
                    debs: DebCache) -> Iterator[None]:
    """While inside, `tree`'s apt archives directory is a new directory in `scratch`, seeded
    from `debs`; what apt downloaded goes into `debs` at the end, even when the build fails."""
    archives = scratch / f"archives-{uuid.uuid4().hex}"
    archives.mkdir(parents=True)
    ctx.log(f"package cache: {debs.seed(archives)} packages available before download")
    target = tree / ARCHIVES
    ctx.run(mounts.wrap(["mkdir", "-p", target]))
    mounts.mount(ctx, archives, target, "bind")
    try:
        yield
    finally:
        ctx.log(f"package cache: {debs.harvest(archives)} packages added")
    ctx.run(mounts.wrap(["umount", target]))
    shutil.rmtree(archives)


def _link_or_copy(source: Path, target: Path) -> None:
    """Give `source` the name `target` atomically, sharing its blocks when on one file system.

    Raises FileExistsError when `target` exists: the first writer wins, nobody overwrites.
    """
    try:
        os.link(source, target)
        return
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM):
            raise
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        shutil.copyfile(source, staging)
        os.link(staging, target)
    finally:
        staging.unlink(missing_ok=True)
