"""The sandbox's file system: the image tree as ``/`` and nothing of the host.

Host sources (the tree, device nodes, input and output binds) are cloned as detached mounts by
`clone_host_sources` while the launcher is still host root, so that no host directory needs
to be searchable by the sandbox's unprivileged ids. `enter_root` runs in the sandbox's first
process (pid 1 of its PID namespace, root of its user namespace, in its own mount namespace)
before anything from the tree runs: it attaches the tree, then opens every mount point in it
with ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`` from a descriptor of the tree's root,
and attaches mounts to those descriptors. A symbolic link on the way to a mount point (a
tree's ``/proc`` or ``/dev`` pointing at ``/run/../../../etc``) is refused, never followed on
the host. Finally ``pivot_root`` makes the tree ``/`` and the old root is detached: no host
path remains.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from . import syscalls as sc
from .errors import SandboxSetupError
from .spec import Bind, SandboxSpec

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEVICE_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
                "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")
ROOT_ATTACHMENT = "/tmp"  # any host directory: the mount namespace is private

_RESOLVE = sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS
_O_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_NOSUID_NODEV = sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV
_NOTHING = _NOSUID_NODEV | sc.MOUNT_ATTR_NOEXEC


class MountPoints:
    """Opens, creating what is missing, mount points below a root without following links."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd

    def _open(self, dir_fd: int, name: str, flags: int, shown: str) -> int:
        try:
            return sc.openat2(dir_fd, name, flags, _RESOLVE)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise SandboxSetupError(f"refusing to mount on {shown}: it is a symbolic link "
                                        "in the image tree") from None
            if error.errno == errno.ENOTDIR:
                raise SandboxSetupError(f"refusing to mount on {shown}: not a directory in "
                                        "the image tree") from None
            raise

    def directory(self, path: str) -> int:
        """An O_PATH descriptor of directory `path` (absolute, inside), made if missing."""
        fd = os.dup(self.root_fd)
        shown = ""
        for name in filter(None, path.split("/")):
            shown += "/" + name
            try:
                child = self._open(fd, name, _O_PATH_DIR, shown)
            except FileNotFoundError:
                os.mkdir(name, 0o755, dir_fd=fd)
                child = self._open(fd, name, _O_PATH_DIR, shown)
            os.close(fd)
            fd = child
        return fd

    def file(self, path: str) -> int:
        """An O_PATH descriptor of regular file `path` (absolute, inside), made if missing."""
        parent_path, name = path.rsplit("/", 1)
        parent = self.directory(parent_path)
        try:
            try:
                fd = self._open(parent, name, os.O_PATH | os.O_CLOEXEC, path)
            except FileNotFoundError:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o644, dir_fd=parent))
                fd = self._open(parent, name, os.O_PATH | os.O_CLOEXEC, path)
        finally:
            os.close(parent)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise SandboxSetupError(f"refusing to mount on {path}: not a regular file in the "
                                    "image tree")
        return fd


def _attach(mount_fd: int, target_fd: int) -> None:
    try:
        sc.move_mount(mount_fd, target_fd)
    finally:
        os.close(mount_fd)
        os.close(target_fd)


def _clone(path: str, attributes: int, dir_fd: int = sc.AT_FDCWD) -> int:
    """A detached copy of the mount tree at `path`, with `attributes` added."""
    fd = sc.open_tree(dir_fd, path, sc.OPEN_TREE_CLONE | os.O_CLOEXEC | sc.AT_RECURSIVE
                      | sc.AT_SYMLINK_NOFOLLOW)
    if attributes:
        sc.mount_setattr(fd, attributes)
    return fd


@dataclass
class HostSources:
    """Detached mounts of what the sandbox shows from the host, made before unsharing."""

    tree: int | None
    devices: dict[str, int]
    binds: list[tuple[Bind, int]]


def clone_host_sources(spec: SandboxSpec) -> HostSources:
    """Clone the tree, the device nodes and the binds (as host root, in the host's namespaces)."""
    tree = None if spec.root is None else _clone(str(spec.root), _NOSUID_NODEV)
    devices = {name: _clone(f"/dev/{name}", 0) for name in DEVICES}
    binds = [(bind, _clone(str(bind.host), sc.MOUNT_ATTR_RDONLY | _NOSUID_NODEV))
             for bind in spec.inputs]
    binds += [(bind, _clone(str(bind.host), _NOSUID_NODEV)) for bind in spec.outputs]
    return HostSources(tree, devices, binds)


def _attach_root(tree: int | None) -> int:
    if tree is None:
        tree = sc.new_mount("tmpfs", {"mode": "0755", "size": "16m"}, _NOSUID_NODEV)
    sc.move_mount_to_path(tree, ROOT_ATTACHMENT)
    os.close(tree)
    return os.open(ROOT_ATTACHMENT, _O_PATH_DIR)


def _mount_proc(points: MountPoints) -> None:
    _attach(sc.new_mount("proc", {}, _NOTHING), points.directory("/proc"))
    proc = points.directory("/proc")
    try:
        for name in PROC_READ_ONLY:
            try:
                source = _clone(name, sc.MOUNT_ATTR_RDONLY | _NOTHING, proc)
            except FileNotFoundError:
                continue
            _attach(source, sc.openat2(proc, name, os.O_PATH | os.O_CLOEXEC, _RESOLVE))
    finally:
        os.close(proc)


def _mount_tmpfs(points: MountPoints, path: str, mode: str, size: str, attributes: int) -> None:
    _attach(sc.new_mount("tmpfs", {"mode": mode, "size": size}, attributes),
            points.directory(path))


def _mount_dev(points: MountPoints, devices: dict[str, int]) -> None:
    _mount_tmpfs(points, "/dev", "0755", "1m", sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NOEXEC)
    dev = MountPoints(points.directory("/dev"))
    try:
        for name, source in devices.items():
            _attach(source, dev.file("/" + name))
        for name, target in DEVICE_LINKS.items():
            os.symlink(target, name, dir_fd=dev.root_fd)
        _attach(sc.new_mount("devpts", {"newinstance": None, "ptmxmode": "0666",
                                        "mode": "0620", "gid": "5"},
                             sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NOEXEC),
                dev.directory("/pts"))
        _mount_tmpfs(dev, "/shm", "1777", "64m", _NOTHING)
    finally:
        os.close(dev.root_fd)


def enter_root(spec: SandboxSpec, sources: HostSources) -> None:
    """Build the sandbox's file system and make it ``/`` of this process (and its children)."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    root_fd = _attach_root(sources.tree)
    points = MountPoints(root_fd)
    _mount_proc(points)
    _mount_tmpfs(points, "/sys", "0555", "4k", sc.MOUNT_ATTR_RDONLY | _NOTHING)
    _mount_dev(points, sources.devices)
    _mount_tmpfs(points, "/run", "0755", "64m", _NOSUID_NODEV)
    tmp_size = f"{spec.limits.memory_mib}m" if spec.limits.memory_mib else "25%"
    _mount_tmpfs(points, "/tmp", "1777", tmp_size, _NOSUID_NODEV)
    for bind, source in sources.binds:
        if stat.S_ISDIR(os.fstat(source).st_mode):
            target = points.directory(bind.inside)
        else:
            target = points.file(bind.inside)
        _attach(source, target)
    os.fchdir(root_fd)
    os.close(root_fd)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
