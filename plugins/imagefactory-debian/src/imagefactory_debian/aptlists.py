"""The package lists cache: apt's lists from the last JEOS tree made, for the next one.

A JEOS tree starts with the lists the last tree of the same sources ended with, so mmdebstrap's
``apt-get update`` only asks the mirror whether they changed (``Hit:``) instead of downloading
and unpacking them again (about 9 MB of compressed lists for bookworm's main component, a
second or more per tree; the package cache saves the packages' download, this saves the lists').
apt still verifies what it uses: the release files' signatures on every update, and each list
against the hashes of the release file that names it, downloading what changed.

One flat directory, ``ctx.cache_dir("debian-lists")``, with apt's own file names (the source's
URL with ``/`` written ``_``), so that trees of different releases, architectures or mirrors
take only their own files. A file enters it under its final name by rename(2), so concurrent
builds see an old or a new file, never half of one. The lists are taken from the tree as
mmdebstrap left it (nothing of a template has run in it), regular files only, opened without
following links.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import urllib.parse
import uuid
from collections.abc import Iterable
from pathlib import Path

LISTS = Path("var/lib/apt/lists")
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~%+-]*")
_KINDS = ("_InRelease", "_Release", "_Release.gpg", "_Packages")
_APT_QUOTED = set('\\|{}[]<>"^~_=!@#$%&*')
"""Characters apt writes %-encoded in list file names: a source with one is not cached."""


def prefixes(sources: Iterable[str]) -> tuple[str, ...]:
    """The beginning of the list files' names of each one-line source (``deb URL SUITE …``)."""
    found = []
    for source in sources:
        words = source.split()
        if len(words) < 3 or words[0] != "deb":
            continue
        url = urllib.parse.urlsplit(words[1])
        place = f"{url.hostname}{url.path.rstrip('/')}"
        suite = words[2]
        if (not url.hostname or url.port or _APT_QUOTED & set(place + suite)
                or suite.endswith("/")):
            continue  # apt would spell it otherwise; a flat repository has no dists/
        found.append(f"{place}/dists/{suite}/".replace("/", "_"))
    return tuple(found)


class ListsCache:
    def __init__(self, root: Path) -> None:
        self.dir = root

    def seed(self, lists: Path, wanted: tuple[str, ...]) -> int:
        """Copy the cached lists whose names start with one of `wanted` into the new directory
        `lists`; return how many."""
        lists.mkdir(parents=True, exist_ok=True)
        count = 0
        for cached in self.dir.iterdir():
            if _ours(cached.name, wanted):
                with contextlib.suppress(FileNotFoundError):  # replaced meanwhile
                    shutil.copy2(cached, lists / cached.name)  # apt asks if newer than mtime
                    count += 1
        return count

    def harvest(self, tree: Path, wanted: tuple[str, ...]) -> int:
        """Take the lists of the tree `tree` (made by mmdebstrap) whose names start with one of
        `wanted`; return how many."""
        try:
            directory = _open_inside(tree, LISTS)
        except OSError:
            return 0
        count = 0
        try:
            for name in os.listdir(directory):
                if not _ours(name, wanted):
                    continue
                with contextlib.suppress(OSError):
                    self._take(directory, name)
                    count += 1
        finally:
            os.close(directory)
        return count

    def _take(self, directory: int, name: str) -> None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        with os.fdopen(os.open(name, flags, dir_fd=directory), "rb") as source:
            info = os.fstat(source.fileno())
            if not stat.S_ISREG(info.st_mode):
                return
            staging = self.dir / f".{name}.{uuid.uuid4().hex}"
            try:
                with staging.open("xb") as copy:
                    shutil.copyfileobj(source, copy, 1 << 20)
                staging.chmod(0o644)
                os.utime(staging, ns=(info.st_atime_ns, info.st_mtime_ns))
                staging.rename(self.dir / name)
            finally:
                staging.unlink(missing_ok=True)


def _ours(name: str, wanted: tuple[str, ...]) -> bool:
    return (bool(_FILE.fullmatch(name)) and name.startswith(wanted)
            and name.endswith(_KINDS))


def _open_inside(tree: Path, relative: Path) -> int:
    """A descriptor of the directory `relative` under `tree`, no component followed if a
    link."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tree, flags)
    try:
        for part in relative.parts:
            inner = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = inner
    except OSError:
        os.close(fd)
        raise
    return fd
