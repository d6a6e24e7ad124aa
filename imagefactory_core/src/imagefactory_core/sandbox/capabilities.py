"""The capabilities root keeps inside a sandbox: what package installation needs, no more.

Root inside a user namespace holds every capability, but only over that namespace. Even so
the sandbox drops all but those below from the bounding, effective, permitted, inheritable and
ambient sets, so that an executed program (root's permitted set after ``execve`` is the
bounding set) never regains them: no ``SYS_ADMIN`` (mounts, namespaces), ``DAC_READ_SEARCH``
(``open_by_handle_at``), ``NET_RAW``, ``NET_ADMIN``, ``IPC_OWNER``, ``SYS_PTRACE`` or ``MKNOD``;
``SYS_CHROOT`` stays because maintainer scripts use ``chroot`` within the tree.
"""

from __future__ import annotations

from . import syscalls as sc

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_FOWNER = 3
CAP_FSETID = 4
CAP_KILL = 5
CAP_SETGID = 6
CAP_SETUID = 7
CAP_NET_BIND_SERVICE = 10
CAP_SYS_CHROOT = 18
CAP_SETFCAP = 31

KEPT = (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID,
        CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_SETFCAP)
KEPT_MASK = sum(1 << cap for cap in KEPT)


def last_capability() -> int:
    """The highest capability this kernel knows (read while /proc is the host's)."""
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        return int(handle.read())


def drop_capabilities(last_cap: int) -> None:
    """Keep only `KEPT`, in every set, for this process and whatever it executes."""
    for cap in range(last_cap + 1):
        if cap not in KEPT:
            sc.prctl(sc.PR_CAPBSET_DROP, cap)
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    sc.capset(KEPT_MASK, KEPT_MASK, 0)
