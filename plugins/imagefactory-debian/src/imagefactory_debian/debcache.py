"""The package cache: every .deb any build downloaded, reused by later builds.

One directory per (release, architecture) under ``ctx.cache_dir("debian-debs")``::

    by-hash/<sha256>     a package file, named by the SHA-256 of its content (host-computed)
    <name>.deb           a symbolic link to by-hash/<sha256>: apt's file name for the package

While apt runs for a build (mmdebstrap, the template's packages, a target's packages), the
tree's ``/var/cache/apt/archives`` is a directory of the build (a sandbox output, or
bind-mounted for mmdebstrap) filled beforehand with links to the cached files and a list of
their hashes (`MANIFEST`). Before apt reads it, ``verify-archives.sh`` removes every package
whose hash is not the one the build's own package lists give for it: apt itself checks only
the size of a package it finds there, so without this step a file that one build's template
forged under a Debian package's name would be installed into other builds' images. The
verification runs in the consuming build (mmdebstrap's setup hook, or its sandbox), against the
lists that build's apt verified, so no build can vouch for a file to another. What apt
downloaded is copied into the cache afterwards, with the checks of `cached_archives`.
Downloaded packages thus never land in the tree, whatever file system the tree is on.

Concurrent builds cannot corrupt the cache: a file enters ``by-hash`` only complete, under the
hash the host computed while copying it, by link(2); a name is pointed at it by rename(2) of a
new symbolic link. A name whose cached file a build refused (its lists give another hash) is
pointed at what that build downloaded: a forged file costs later builds a download, never their
integrity. Files are never modified in place, so hard links between the cache and build trees
are safe. Packages no build used for `max_age_days` are deleted; deleting one under a build's
feet only costs a download.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
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
MANIFEST = ".imagefactory-sha256"
"""In an archives directory: ``<sha256> <name>`` of each package the cache put there."""
DEB_MAGIC = b"!<arch>\ndebian-binary"
MAX_PACKAGE_BYTES = 2 << 30
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~%_-]*\.deb")
"""apt's file names: package_version_arch.deb, the epoch's colon written %3a."""


def deb_file_name(package: str, version: str, arch: str) -> str:
    """The name apt gives a downloaded package (the epoch's colon is URL-encoded)."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


class DebCache:
    def __init__(self, root: Path, codename: str, dpkg_arch: str) -> None:
        self.dir = root / f"{codename}-{dpkg_arch}"
        self.files = self.dir / "by-hash"
        self.files.mkdir(parents=True, exist_ok=True)

    def seed(self, archives: Path) -> int:
        """Make every cached package available to apt in `archives`, with `MANIFEST`; return
        how many."""
        archives.mkdir(parents=True, exist_ok=True)
        lines = []
        for entry in self.dir.glob("*.deb"):
            digest = self._digest(entry)
            if digest is None:
                continue
            try:
                _link_or_copy(self.files / digest, archives / entry.name)
            except FileNotFoundError:  # pruned meanwhile
                continue
            except FileExistsError:
                pass
            lines.append(f"{digest} {entry.name}\n")
        if lines:
            (archives / MANIFEST).write_text("".join(lines))
        return len(lines)

    def harvest(self, archives: Path) -> tuple[int, list[tuple[str, str]]]:
        """Copy into the cache the packages in `archives` (written by a sandbox) that it lacks.

        Return how many were added, and the names refused with the reason.
        """
        added = 0
        refused: list[tuple[str, str]] = []
        directory = os.open(archives, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            for name in sorted(os.listdir(directory)):
                if not name.endswith(".deb") or name.startswith("."):
                    continue
                if not _NAME.fullmatch(name):
                    refused.append((name, "not a package file name"))
                    continue
                if self._is_cached(directory, name):
                    continue
                try:
                    digest = _take(directory, name, self.files)
                except (OSError, ValueError) as error:
                    refused.append((name, str(error)))
                    continue
                if self._digest(self.dir / name) != digest:
                    _point(self.dir / name, digest)
                    added += 1
        finally:
            os.close(directory)
        return added, refused

    def refresh(self, used: Iterable[str], max_age_days: int) -> int:
        """Mark the package files `used` as fresh and delete the ones unused for too long;
        return how many were deleted."""
        now = time.time()
        for name in used:
            with contextlib.suppress(OSError):
                os.utime(self.dir / name, (now, now))  # the file, through its name's link
        deleted = 0
        for entry in self.files.iterdir():
            try:
                if now - entry.stat().st_mtime > max_age_days * DAY_SECONDS:
                    entry.unlink()
                    deleted += 1
            except FileNotFoundError:
                pass
        for entry in self.dir.glob("*.deb"):
            # names of deleted files; files of the layout before by-hash (never verified)
            if not entry.is_symlink() or not entry.exists():
                entry.unlink(missing_ok=True)
        return deleted

    def _digest(self, entry: Path) -> str | None:
        """The SHA-256 the name `entry` stands for, or None when it is no name of this cache."""
        try:
            target = os.readlink(entry)
        except OSError:
            return None
        digest = target.removeprefix("by-hash/")
        return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None

    def _is_cached(self, directory: int, name: str) -> bool:
        """Whether `name` in the open `directory` is the cached file itself (a seeded link)."""
        try:
            mine = os.stat(name, dir_fd=directory, follow_symlinks=False)
            cached = (self.dir / name).stat()
        except OSError:
            return False
        return (mine.st_dev, mine.st_ino) == (cached.st_dev, cached.st_ino)


@contextmanager
def cached_archives(ctx: BuildContext, scratch: Path, debs: DebCache) -> Iterator[Path]:
    """A new archives directory for one apt run, in `scratch`: owned by the sandbox's root and
    seeded from `debs` with links to the cached files (owned by host root, so read-only to any
    sandbox) and their hashes, which ``verify-archives.sh`` checks before apt runs. What apt
    downloaded into it enters `debs` at the end, even when the build fails: regular files only,
    opened without following links, checked to be Debian packages and copied (a cached package
    is never a file a sandbox could still change)."""
    archives = scratch / f"archives-{uuid.uuid4().hex}"
    archives.mkdir(parents=True)
    ctx.adopt_tree(archives)  # while empty: the links to cached files keep host root's ids
    ctx.log(f"package cache: {debs.seed(archives)} packages available before download")
    try:
        yield archives
    finally:
        added, refused = debs.harvest(archives)
        ctx.log(f"package cache: {added} packages added")
        for name, why in refused:
            ctx.log(f"package cache: {name} not taken: {why}")
        shutil.rmtree(archives)


def _take(directory: int, name: str, files: Path) -> str:
    """Copy the regular file `name` of the open `directory` into `files` under its SHA-256,
    never following a link, only if it looks like a Debian package (an ar archive) and is not
    too large; return the hash."""
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
        staging = files / f".{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        try:
            with staging.open("xb") as copy:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    copy.write(chunk)
            staging.chmod(0o644)
            with contextlib.suppress(FileExistsError):  # the same content, from another build
                os.link(staging, files / digest.hexdigest())
        finally:
            staging.unlink(missing_ok=True)
    return digest.hexdigest()


def _point(entry: Path, digest: str) -> None:
    """Make the name `entry` a link to the cached file `digest`, atomically."""
    staging = entry.with_name(f".{entry.name}.{uuid.uuid4().hex}")
    staging.symlink_to(f"by-hash/{digest}")
    try:
        staging.rename(entry)
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
