"""Run the installer guest, its QEMU confined, and tell how it ended.

The guest is this plugin's sandbox: whatever runs in it (the installer, the template's
``%post``) may do anything to the guest, so QEMU itself is confined. With the embedded driver
(`run_guest` on ``embed``), libvirt's QEMU driver and QEMU run in a build sandbox
(``ctx.sandbox``, docs/security.md) whose root is an empty tmpfs with the host's programs
read-only, as an unprivileged user of the sandbox's own user namespace (`GUEST_UID`: host uid
= the sandbox's first subordinate id + `GUEST_UID`, with no capabilities):

* host paths: the kernel, the initrd with the kickstart, an ISO and the Python that runs
  `imagefactory_fedora.vmrun` are read-only; the only writable ones are the disk and the run
  directory (console, libvirt's own state);
* network: the sandbox's network namespace has only a loopback, where the sandbox's egress
  proxy listens; QEMU's user network maps the guest's 10.0.2.2 to it. Every connection the
  guest makes therefore goes through the proxy and the operator's egress policy, or nowhere;
* no ``/dev/kvm`` in a sandbox: such guests run under TCG (emulation).

The sandbox is killed with the build (cancellation, timeout), and the kernel kills every
process of its PID namespace, QEMU included; a transient domain leaves nothing behind.

With libvirtd (``system``), QEMU is libvirtd's child on the host, in the host's namespaces,
with no capabilities, as an unprivileged host uid of its own (a DAC ``<seclabel>``): one of
the sandbox's subordinate ids, drawn per build from `SYSTEM_GUEST_IDS` and not taken by a
running build, so that a QEMU a guest took over reaches no other build's sockets or files.
The guest's network and disks stay in a build sandbox all the same
(`imagefactory_fedora.relay`, running as that id): QEMU gets its NIC's frames and the disk
and ISO (NBD) over Unix sockets in a run directory of its own under `SYSTEM_RUN`, where also
its kernel and initrd are; it opens no other host file, and the guest's one way out is the
same egress proxy. The domain is destroyed with vmrun (auto-destroy), the relay with its
sandbox, the run directory when the build ends.
"""

from __future__ import annotations

import collections
import copy
import importlib.util
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from imagefactory_core.plugin import BuildContext, BuildError, CommandFailed

from . import relay, vmrun
from .connection import SYSTEM_URI
from .console import read_console
from .domain import Guest, domain_xml

GUEST_UID = 1000
RUN = "/run/imagefactory-fedora"
DISK = f"{RUN}/disk.raw"
ISO = f"{RUN}/install.iso"
KERNEL = f"{RUN}/vmlinuz"
INITRD = f"{RUN}/initrd.img"
STATE = f"{RUN}/state"
SYSTEM_RUN = Path("/run/imagefactory-fedora")  # on the host: libvirtd's QEMU reaches it
# Ids (of the sandbox's user namespace) libvirtd's QEMU may run as: above the users an image
# tree usually has, below the end of the 65536 ids mapped.
SYSTEM_GUEST_IDS = range(40000, 60000)
HOST_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib64")
QEMU_CONF = """# the embedded driver of one install (imagefactory-fedora)
stdio_handler = "file"
"""
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": STATE}
EXIT_REASONS = {
    3: "the installer stopped making progress",
    4: "the install took longer than install_timeout",
    5: "the guest stopped without powering off (a crash or a reset)",
    2: "the guest could not start",
}


@dataclass(frozen=True)
class Media:
    """Host files of one install."""

    kernel: Path
    initrd: Path
    disk: Path
    iso: Path | None = None


@dataclass(frozen=True)
class Outcome:
    console: str  # the whole serial console
    seconds: float


def _cpuset() -> str:
    """The host CPUs this process may use (libvirt cannot read /sys inside the sandbox)."""
    return ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))


def _libvirt_dir() -> Path:
    spec = importlib.util.find_spec("libvirt")
    if spec is None or spec.origin is None:
        raise BuildError("libvirt-python is not installed (pip install libvirt-python)")
    return Path(spec.origin).resolve().parent


def _python_binds() -> list[tuple[Path, str]]:
    """The interpreter, its standard library and libvirt-python, each at its own path (a
    relocated interpreter would not find its shared library)."""
    paths = {Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent,
             _libvirt_dir(), Path(vmrun.__file__).resolve().parent}
    return [(path, str(path)) for path in sorted(paths)
            if not str(path).startswith(tuple(p + "/" for p in HOST_SYSTEM))]


def _account_files(run: Path) -> list[tuple[Path, str]]:
    """/etc/passwd and /etc/group for the sandbox: libvirt looks its user up."""
    passwd = run / "passwd"
    group = run / "group"
    passwd.write_text(f"root:x:0:0:root:/root:/bin/sh\nqemu:x:{GUEST_UID}:{GUEST_UID}:"
                      f"imagefactory guest:{RUN}/state:/bin/false\n")
    group.write_text(f"root:x:0:\nqemu:x:{GUEST_UID}:\n")
    for path in (passwd, group):
        path.chmod(0o644)
    return [(passwd, "/etc/passwd"), (group, "/etc/group")]


def run_guest(ctx: BuildContext, guest: Guest, media: Media, scratch: Path, *,
              connection: str, inactivity: int, timeout: int) -> Outcome:
    """Run `guest` on `connection` (``embed`` or ``system``) until it powers off; raise
    `BuildError` with the console's last lines when it hangs, runs too long, crashes or cannot
    start."""
    limits = ["--inactivity", str(inactivity), "--timeout", str(timeout)]
    if media.iso:
        limits += ["--disk", "sda"]
    if connection == "system":
        return _run_system(ctx, guest, media, scratch, limits, timeout)
    return _run_embedded(ctx, guest, media, scratch, limits, timeout)


def _vmrun() -> list[str]:
    return [str(Path(sys.executable).resolve()), "-I", str(Path(vmrun.__file__).resolve()),
            "--site", str(_libvirt_dir()), "--disk", "vda"]


def _run_embedded(ctx: BuildContext, guest: Guest, media: Media, scratch: Path,
                  limits: list[str], timeout: int) -> Outcome:
    state = scratch / "state"  # written inside only: host root's files there are unmapped
    state.mkdir(parents=True)
    (scratch / "qemu.conf").write_text(QEMU_CONF)
    guest = replace(guest, kernel=KERNEL, initrd=INITRD, disk=DISK, console=f"{STATE}/console",
                    iso=ISO if media.iso else None, cpuset=guest.cpuset or _cpuset())
    (scratch / "domain.xml").write_text(domain_xml(guest))
    for name in ("qemu.conf", "domain.xml"):
        (scratch / name).chmod(0o644)
    inputs = [(media.kernel, KERNEL), (media.initrd, INITRD), *_account_files(scratch),
              (scratch / "domain.xml", f"{RUN}/domain.xml"),
              (scratch / "qemu.conf", f"{RUN}/qemu.conf"), *_python_binds()]
    if media.iso:
        inputs.append((media.iso, ISO))
    sandbox = ctx.sandbox(None, host_tools=True, network="egress", inputs=inputs,
                          outputs=[(state, STATE), (media.disk, DISK)], env=_ENV)
    argv = [*_vmrun(), "--embed-root", f"{STATE}/root", "--qemu-conf", f"{RUN}/qemu.conf",
            "--xml", f"{RUN}/domain.xml", "--console", f"{STATE}/console",
            "--uid", str(GUEST_UID), "--own", STATE, "--own", DISK, *limits]
    return _supervise(lambda: sandbox.run(argv, timeout=timeout + 120), state / "console")


def _run_system(ctx: BuildContext, guest: Guest, media: Media, scratch: Path,
                limits: list[str], timeout: int) -> Outcome:
    inputs = _python_binds()
    if media.iso:
        inputs.append((media.iso, ISO))
    run = SYSTEM_RUN / guest.name
    sandbox = ctx.sandbox(None, host_tools=True, network="egress", inputs=inputs,
                          outputs=[(run, STATE), (media.disk, DISK)], env=_ENV)
    assert sandbox.spec.ids is not None
    SYSTEM_RUN.mkdir(mode=0o711, exist_ok=True)
    SYSTEM_RUN.chmod(0o711)
    run.mkdir(mode=0o700)
    try:
        inside = _free_id(sandbox.spec.ids.uid, sandbox.spec.ids.gid, run)
        uid, gid = sandbox.spec.ids.uid + inside, sandbox.spec.ids.gid + inside
        for source, name in ((media.kernel, "vmlinuz"), (media.initrd, "initrd.img")):
            shutil.copyfile(source, run / name)
            os.chown(run / name, uid, gid)
        guest = replace(guest, kernel=str(run / "vmlinuz"), initrd=str(run / "initrd.img"),
                        disk="", iso="iso" if media.iso else None, console=str(run / "console"),
                        storage_socket=str(run / relay.STORAGE_SOCKET),
                        net_socket=str(run / relay.NET_SOCKET), seclabel_user=f"+{uid}:+{gid}")
        (scratch / "domain.xml").write_text(domain_xml(guest))
        relay_argv = [str(Path(sys.executable).resolve()), "-I",
                      str(Path(relay.__file__).resolve()), "--state", STATE, "--disk", DISK,
                      "--emulator", f"qemu-system-{guest.arch}", "--uid", str(inside),
                      "--own", STATE, "--own", DISK]
        if media.iso:
            relay_argv += ["--iso", ISO]
        (scratch / "relay.json").write_text(json.dumps(sandbox.argv(relay_argv)))
        argv = [*_vmrun(), "--connect", SYSTEM_URI, "--relay", str(scratch / "relay.json"),
                "--wait-for", guest.storage_socket, "--wait-for", guest.net_socket,
                "--net-counters", str(run / relay.NET_COUNTERS),
                "--xml", str(scratch / "domain.xml"), "--console", guest.console, *limits]
        return _supervise(lambda: ctx.run(argv, timeout=timeout + 120), run / "console")
    finally:
        shutil.rmtree(run, ignore_errors=True)


def _free_id(uid_base: int, gid_base: int, run: Path) -> int:
    """An id of `SYSTEM_GUEST_IDS` that no other run directory's owner (a running build's
    QEMU) has, given to `run` at once (two builds starting in the same instant would also
    need the same draw)."""
    taken = {entry.stat().st_uid for entry in SYSTEM_RUN.iterdir() if entry != run}
    free = [inside for inside in SYSTEM_GUEST_IDS if uid_base + inside not in taken]
    if not free:
        raise BuildError("no free id for the guest's QEMU: "
                         f"{len(taken)} builds run through libvirtd")
    inside = free[secrets.randbelow(len(free))]
    os.chown(run, uid_base + inside, gid_base + inside)
    return inside


def _supervise(run: Callable[[], object], console: Path) -> Outcome:
    """Run vmrun (`run`) and read the console it leaves, or fail with its last lines."""
    started = time.monotonic()
    try:
        run()
    except CommandFailed as error:
        reason = EXIT_REASONS.get(error.returncode, f"the guest's runner failed (exit code "
                                                    f"{error.returncode})")
        raise BuildError(f"{reason}: {_runner_says(error.output_tail)}\nlast console lines:\n"
                         f"{_last_lines(read_console(console))}") from None
    return Outcome(read_console(console), time.monotonic() - started)


def watched(ctx: BuildContext, start: float, end: float) -> BuildContext:
    """A context like `ctx` that moves progress from `start` to `end` (percent of `ctx`) as the
    guest writes its disk, without logging the runner's ``vm: io`` lines."""
    forward = ctx.log_sink

    def sink(line: str) -> None:
        if line.startswith("vm: io "):
            written = int(line.split()[2])
            share = 1 - 0.5 ** (written / (512 * 1024**2))  # half way per 512 MiB written
            ctx.progress(start + (end - start) * share)
            return
        forward(line)

    child = copy.copy(ctx)
    child.log_sink = sink
    return child


def _runner_says(output: str) -> str:
    """The runner's last word (a ``vm: …`` line), else the last line of its output."""
    lines = [line for line in output.splitlines() if line.strip()]
    said = [line[4:] for line in lines if line.startswith("vm: ")]
    return (said or lines or ["no output"])[-1]


def _last_lines(console: str, count: int = 25) -> str:
    lines = collections.deque((line for line in console.splitlines() if line.strip()),
                              maxlen=count)
    return "\n".join(lines) or "(the console stayed empty)"
