"""The Linux system calls the sandbox needs and Python 3.11 does not wrap, through ctypes.

The mount API of Linux 5.2+ (`open_tree`, `move_mount`, `fsopen`/`fsconfig`/`fsmount`,
`mount_setattr`) works on file descriptors, and `openat2` resolves a path with the kernel
refusing symbolic links: together they let the launcher mount into an image tree without ever
resolving a path of the tree the way the host would. Numbers from 424 on are the same on every
architecture; `pivot_root` and `seccomp` have no wrapper in glibc 2.36, so they need the
per-architecture number.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
NAMESPACE_FLAGS = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
                   | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME)

MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_SYS_OPENAT2 = 437
_SYS_MOUNT_SETATTR = 442
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
_SOCK_FILTER_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str, path: str | None = None) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return result


def _path(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def _syscall(number: int, what: str, *args: object, path: str | None = None) -> int:
    return _check(_libc.syscall(ctypes.c_long(number), *args), what, path)


def _int(value: int) -> ctypes.c_long:
    return ctypes.c_long(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    _check(_libc.mount(_path(source), _path(target), _path(fstype), ctypes.c_ulong(flags),
                       _path(data)), "mount", target)


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(_path(target), ctypes.c_int(flags)), "umount2", target)


def _number(numbers: dict[str, int], what: str) -> int:
    machine = os.uname().machine
    if machine not in numbers:
        raise OSError(f"{what}: unknown system call number on {machine}")
    return numbers[machine]


def pivot_root(new_root: str, put_old: str) -> None:
    _syscall(_number(_SYS_PIVOT_ROOT, "pivot_root"), "pivot_root", _path(new_root),
             _path(put_old), path=new_root)


def load_seccomp_program(program: bytes) -> None:
    """Install the classic BPF `program` as a seccomp filter of every thread of this process
    (``no_new_privs`` must be set, or the caller must hold CAP_SYS_ADMIN)."""
    if not program or len(program) % _SOCK_FILTER_SIZE:
        raise OSError(f"seccomp: a BPF program of {len(program)} bytes is not whole entries")
    code = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // _SOCK_FILTER_SIZE, ctypes.cast(code, ctypes.c_void_p))
    _syscall(_number(_SYS_SECCOMP, "seccomp"), "seccomp", _int(SECCOMP_SET_MODE_FILTER),
             _int(SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(fprog))


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    how = _OpenHow(flags, mode, resolve)
    return _syscall(_SYS_OPENAT2, "openat2", _int(dirfd), _path(path), ctypes.byref(how),
                    ctypes.c_size_t(ctypes.sizeof(how)), path=path)


def open_tree(dirfd: int, path: str, flags: int) -> int:
    return _syscall(_SYS_OPEN_TREE, "open_tree", _int(dirfd), _path(path), _int(flags),
                    path=path)


def move_mount(from_fd: int, to_fd: int) -> None:
    """Attach the detached mount `from_fd` on the directory or file `to_fd` refers to."""
    _syscall(_SYS_MOVE_MOUNT, "move_mount", _int(from_fd), b"", _int(to_fd), b"",
             _int(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))


def move_mount_to_path(from_fd: int, target: str) -> None:
    _syscall(_SYS_MOVE_MOUNT, "move_mount", _int(from_fd), b"", _int(AT_FDCWD), _path(target),
             _int(MOVE_MOUNT_F_EMPTY_PATH), path=target)


def new_mount(fstype: str, options: dict[str, str | None], attributes: int) -> int:
    """A detached mount of a new `fstype` file system (`None` values are flag options)."""
    context = _syscall(_SYS_FSOPEN, "fsopen", _path(fstype), _int(FSOPEN_CLOEXEC), path=fstype)
    try:
        for key, value in options.items():
            if value is None:
                _syscall(_SYS_FSCONFIG, "fsconfig", _int(context), _int(FSCONFIG_SET_FLAG),
                         _path(key), None, _int(0), path=f"{fstype} {key}")
            else:
                _syscall(_SYS_FSCONFIG, "fsconfig", _int(context), _int(FSCONFIG_SET_STRING),
                         _path(key), _path(value), _int(0), path=f"{fstype} {key}={value}")
        _syscall(_SYS_FSCONFIG, "fsconfig", _int(context), _int(FSCONFIG_CMD_CREATE), None,
                 None, _int(0), path=fstype)
        return _syscall(_SYS_FSMOUNT, "fsmount", _int(context), _int(1), _int(attributes),
                        path=fstype)
    finally:
        os.close(context)


def mount_setattr(fd: int, attributes: int, *, recursive: bool = True) -> None:
    """Set mount attributes (read-only, nosuid, …) on the mount `fd` refers to."""
    attr = _MountAttr(attributes, 0, 0, 0)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    _syscall(_SYS_MOUNT_SETATTR, "mount_setattr", _int(fd), b"", _int(flags),
             ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (64-bit masks, version 3 of the interface)."""
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)(
        _CapData(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF),
        _CapData(effective >> 32, permitted >> 32, inheritable >> 32))
    _check(_libc.capset(ctypes.byref(header), data), "capset")
