"""Who a sandboxed process is on the host, and who owns an image tree there.

A sandbox maps ids 0..count-1 of its user namespace onto a subordinate range root owns
(``/etc/subuid`` and ``/etc/subgid``, written by ``newuidmap``/``newgidmap``): root in the image
is ``base`` on the host, an unprivileged user. An image tree lives on the host **shifted** into
that range (host id = base + image id), as ``mmdebstrap --mode=unshare`` leaves it, so that

- inside the sandbox every file shows its image owner (a file root creates is uid 0 in the
  image) and tools that read ownership (``mkfs.ext4 -d``, ``tar``) record image ids when they run
  inside a sandbox too (see `imagefactory_core.sandbox.tools`);
- on the host nothing in a tree belongs to a real user: a set-uid-root program a template plants
  is set-uid to an unprivileged id, and a process that escapes owns only trees.

Idmapped mounts would let trees stay owned by host root, but then every set-uid file in a tree
would be a real set-uid-root program on the host: the shift is the safer default.
`shift_into_range` adopts a tree made outside (by host root), `shift_out_of_range` gives one
back; both never follow a symbolic link and keep set-uid bits and file capabilities.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import SandboxUnavailable

_CAPABILITY_XATTR = "security.capability"


@dataclass(frozen=True)
class IdRange:
    """A block of host uids and gids the sandbox maps ids 0..count-1 onto."""

    uid: int
    gid: int
    count: int = 65536

    def contains_uid(self, host_uid: int) -> bool:
        return self.uid <= host_uid < self.uid + self.count


def _first_range(path: Path, user: str, count: int) -> int:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] in (user, str(os.getuid())) and int(fields[2]) >= count:
            return int(fields[1])
    raise SandboxUnavailable(
        f"{path} gives {user} no subordinate range of {count} ids: add a line such as "
        f"'{user}:100000:{count}' (scripts/bootstrap.sh does) so sandboxes can run as "
        "unprivileged host ids")


def subordinate_ids(user: str = "root", count: int = 65536, *, subuid: Path = Path("/etc/subuid"),
                    subgid: Path = Path("/etc/subgid")) -> IdRange:
    """The first subordinate range of `user` with room for `count` ids, uid and gid."""
    return IdRange(_first_range(subuid, user, count), _first_range(subgid, user, count), count)


def _shift_one(ids_from: IdRange, ids_to: IdRange, uid: int, gid: int,
               where: str) -> tuple[int, int]:
    if not (ids_from.uid <= uid < ids_from.uid + ids_from.count
            and ids_from.gid <= gid < ids_from.gid + ids_from.count):
        raise ValueError(f"{where} is owned by {uid}:{gid}, outside {ids_from.uid}:{ids_from.gid}"
                         f" +{ids_from.count}: it cannot be shifted")
    return uid - ids_from.uid + ids_to.uid, gid - ids_from.gid + ids_to.gid


def _chown_regular(dir_fd: int, name: str, uid: int, gid: int) -> None:
    """Change a regular file's owner through a descriptor, restoring what chown clears."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                 dir_fd=dir_fd)
    try:
        mode = os.fstat(fd).st_mode
        try:
            capability: bytes | None = os.getxattr(fd, _CAPABILITY_XATTR)
        except OSError:
            capability = None
        os.fchown(fd, uid, gid)
        if mode & (stat.S_ISUID | stat.S_ISGID):
            os.fchmod(fd, stat.S_IMODE(mode))
        if capability is not None:
            os.setxattr(fd, _CAPABILITY_XATTR, capability)
    finally:
        os.close(fd)


def _shift(tree: Path, ids_from: IdRange, ids_to: IdRange) -> None:
    top = os.stat(tree, follow_symlinks=False)
    if not stat.S_ISDIR(top.st_mode):
        raise ValueError(f"{tree} is not a directory")
    shifted: set[tuple[int, int]] = set()  # files with several names are shifted once
    for _, dirs, files, dir_fd in os.fwalk(tree, follow_symlinks=False):
        here = os.fstat(dir_fd)
        os.fchown(dir_fd, *_shift_one(ids_from, ids_to, here.st_uid, here.st_gid, str(tree)))
        for name in files + dirs:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                continue  # changed when fwalk enters it
            if info.st_nlink > 1:
                if (info.st_dev, info.st_ino) in shifted:
                    continue
                shifted.add((info.st_dev, info.st_ino))
            uid, gid = _shift_one(ids_from, ids_to, info.st_uid, info.st_gid, name)
            if stat.S_ISREG(info.st_mode):
                _chown_regular(dir_fd, name, uid, gid)
            else:
                os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)


def shift_into_range(tree: Path, ids: IdRange) -> None:
    """Make a tree owned by host ids 0..count-1 owned by `ids` (image ids are unchanged)."""
    _shift(tree, IdRange(0, 0, ids.count), ids)


def shift_out_of_range(tree: Path, ids: IdRange) -> None:
    """The reverse of `shift_into_range`: host ids become the image's ids again."""
    _shift(tree, ids, IdRange(0, 0, ids.count))
