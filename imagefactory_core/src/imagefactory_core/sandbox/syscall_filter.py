"""The seccomp filter of a sandbox: at least as strict as Docker's and podman's default.

Like Docker's profile it is an allow-list: every system call libseccomp knows is allowed except
those below, and a call it does not know (one newer than the filter) fails with ENOSYS, so a
future kernel interface is closed until it is reviewed. Refused with EPERM: kernel keyrings,
BPF, kernel modules and kexec, every mount call (the sandbox is set up before the filter is
loaded), namespaces (``unshare``, ``setns``, ``clone`` with a namespace flag; ``clone3`` gets
ENOSYS so that libc falls back to ``clone``, whose flags the filter can see), file handles
(``open_by_handle_at``: the classic container escape), ptrace and cross-process memory access,
perf events, userfaultfd, io_uring, clocks, swap, reboot, accounting, raw I/O ports, terminal
input injection (``TIOCSTI``) and unusual ``personality`` values.

libseccomp compiles the rules into a classic BPF program once per process that wraps sandboxes
(`compiled_filter`); the launcher loads that program with the bare ``seccomp`` system call
(`imagefactory_core.sandbox.syscalls.load_seccomp_program`). The launcher thus neither imports
pyseccomp (whose import runs ``ldconfig -p`` twice) nor compiles some 350 rules: each sandbox
starts about 20 ms sooner (measured), and a build starts eight of them.
"""

from __future__ import annotations

import errno
import functools
import tempfile

import pyseccomp as seccomp

from .syscalls import NAMESPACE_FLAGS

REFUSED = (
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "settimeofday", "stime",
    "create_module", "delete_module", "finit_module", "init_module", "get_kernel_syms",
    "query_module", "kexec_file_load", "kexec_load", "keyctl", "request_key",
    "lookup_dcookie", "mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "name_to_handle_at",
    "open_by_handle_at", "nfsservctl", "perf_event_open", "ptrace", "process_vm_readv",
    "process_vm_writev", "kcmp", "pidfd_getfd", "quotactl", "quotactl_fd", "reboot", "setns",
    "unshare", "swapon", "swapoff", "sysfs", "_sysctl", "syslog", "uselib", "userfaultfd",
    "ustat", "vhangup", "iopl", "ioperm", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "get_mempolicy", "set_mempolicy", "mbind", "move_pages",
    "migrate_pages", "fanotify_init", "vm86", "vm86old",
)
UNAVAILABLE = ("clone3",)
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)  # as Docker: Linux, 32-bit, query
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
_HIGHEST_SYSCALL = 1024
_SPECIAL = {"clone", "personality", "ioctl", *REFUSED, *UNAVAILABLE}


def _known_syscalls(arch: int) -> list[str]:
    names = []
    for number in range(_HIGHEST_SYSCALL):
        try:
            names.append(seccomp.resolve_syscall(arch, number).decode())
        except ValueError:
            continue
    return names


def build_filter() -> seccomp.SyscallFilter:
    """The filter, as libseccomp rules."""
    refuse = seccomp.ERRNO(errno.EPERM)
    syscall_filter = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.ENOSYS))
    syscall_filter.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    arch = seccomp.system_arch()
    for name in _known_syscalls(arch):
        if name not in _SPECIAL:
            syscall_filter.add_rule(seccomp.ALLOW, name)
    for name in REFUSED:
        if seccomp.resolve_syscall(arch, name) >= 0:
            syscall_filter.add_rule(refuse, name)
    syscall_filter.add_rule(seccomp.ALLOW, "clone",
                            seccomp.Arg(0, seccomp.MASKED_EQ, NAMESPACE_FLAGS, 0))
    for bit in range(32):
        if NAMESPACE_FLAGS & (1 << bit):
            syscall_filter.add_rule(refuse, "clone",
                                    seccomp.Arg(0, seccomp.MASKED_EQ, 1 << bit, 1 << bit))
    for persona in PERSONALITIES:
        syscall_filter.add_rule(seccomp.ALLOW, "personality", seccomp.Arg(0, seccomp.EQ, persona))
    syscall_filter.add_rule(refuse, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF,
                                                         TIOCSTI))
    syscall_filter.add_rule(refuse, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF,
                                                         TIOCLINUX))
    syscall_filter.add_rule(seccomp.ALLOW, "ioctl", seccomp.Arg(1, seccomp.NE, TIOCSTI))
    return syscall_filter


@functools.cache
def compiled_filter() -> bytes:
    """The filter as the BPF program the kernel runs: ``struct sock_filter`` entries, for this
    host's architecture (the program checks it first)."""
    with tempfile.TemporaryFile() as program:
        build_filter().export_bpf(program)
        program.seek(0)
        return program.read()
