"""The package cache: every .deb any build downloaded, reused by later builds.

One directory per (release, architecture) under ``ctx.cache_dir("debian-debs")``. While apt
runs for a build (mmdebstrap, the template's packages, a target's packages), the tree's
``/var/cache/apt/archives`` is a directory of the build (a sandbox output, or bind-mounted for
mmdebstrap) filled beforehand with links to the cached files: apt checks each file against the
archive's hashes and downloads only what is missing. What it downloaded is copied into the cache
afterwards, with the checks of `cached_archives`. Downloaded packages thus never land in the
tree, whatever file system the tree is on (a JEOS directory, an overlay, a loop-mounted disk).

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
import stat
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imagefactory_core.plugin import BuildContext

DAY_SECONDS = 86400
ARCHIVES = Path("var/cache/apt/archives")
DEB_MAGIC = b"!<arch>\ndebian-binary"
MAX_PACKAGE_BYTES = 2 << 30


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

    def harvest(self, archives: Path) -> tuple[int, list[tuple[str, str]]]:
        """Copy into the cache the packages in `archives` (written by a sandbox) that it lacks.

        Return how many were added, and the names refused with the reason.
        """
        added = 0
        refused: list[tuple[str, str]] = []
        directory = os.open(archives, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            for name in sorted(os.listdir(directory)):
                if not name.endswith(".deb") or name.startswith(".") or "/" in name:
                    continue
                target = self.dir / name
                if target.exists():
                    continue
                try:
                    _take(directory, name, target)
                except FileExistsError:
                    continue
                except (OSError, ValueError) as error:
                    refused.append((name, str(error)))
                    continue
                added += 1
        finally:
            os.close(directory)
        return added, refused

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
def cached_archives(ctx: BuildContext, scratch: Path, debs: DebCache) -> Iterator[Path]:
    """A new archives directory for one apt run, in `scratch`: owned by the sandbox's root and
    seeded from `debs` with links to the cached files (owned by host root, so read-only to any
    sandbox). What apt downloaded into it enters `debs` at the end, even when the build fails:
    regular files only, opened without following links, checked to be Debian packages and
    copied (a cached package is never a file a sandbox could still change). apt checks every
    package against the signed archive's hashes before it uses one, so a file a template forged
    under a package's name is replaced, not installed."""
    archives = scratch / f"archives-{uuid.uuid4().hex}"
    archives.mkdir(parents=True)
    ctx.adopt_tree(archives)
    ctx.log(f"package cache: {debs.seed(archives)} packages available before download")
    try:
        yield archives
    finally:
        added, refused = debs.harvest(archives)
        ctx.log(f"package cache: {added} packages added")
        for name, why in refused:
            ctx.log(f"package cache: {name} not taken: {why}")
        shutil.rmtree(archives)


def _take(directory: int, name: str, target: Path) -> None:
    """Copy the regular file `name` of the open `directory` to `target`, never following a
    link, only if it looks like a Debian package (an ar archive) and is not too large."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=directory)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ValueError("a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_PACKAGE_BYTES:
            raise ValueError(f"larger than {MAX_PACKAGE_BYTES} bytes")
        if source.read(len(DEB_MAGIC)) != DEB_MAGIC:
            raise ValueError("not a Debian package")
        source.seek(0)
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        try:
            with staging.open("xb") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
            staging.chmod(0o644)
            os.link(staging, target)
        finally:
            staging.unlink(missing_ok=True)


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
