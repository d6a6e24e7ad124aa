"""Run one installer guest to its end (``python -I vmrun.py …``).

This file is run on its own by the service's interpreter: it imports only the standard
library and libvirt-python (whose directory ``--site`` names), never imagefactory. It runs in
one of two ways:

* **embedded** (``--embed-root``), inside a build sandbox: as root of the sandbox it hands the
  work directory and the disk to an unprivileged user (``--uid``), drops to it (no
  capabilities left), opens libvirt's embedded QEMU driver (``qemu:///embed?root=…``: the
  driver runs in this process, no daemon; its configuration is ``--qemu-conf``);
* **through libvirtd** (``--connect qemu:///system``), on the host: it first starts
  ``--relay`` (a command line, as JSON: `imagefactory_fedora.relay` in a build sandbox, which
  serves the guest's disks and network) and waits for the sockets named by ``--wait-for``.

Either way it starts the guest as a transient domain that ends with this process (through
libvirtd: ``VIR_DOMAIN_START_AUTODESTROY``; embedded: with the sandbox), then watches:

* the serial console file, each line printed as ``| …`` (the build log shows it);
* disk I/O (libvirt's block statistics) and network I/O (the byte counters of the sandbox's
  loopback, which all of the guest's traffic to the egress proxy crosses: ``/proc/net/dev``
  in the sandbox, or the copy the relay keeps, ``--net-counters``), as ``vm: io …``;
* the domain's state.

Exit status: 0 the guest powered off; 3 no I/O for ``--inactivity`` seconds; 4 the guest ran
longer than ``--timeout`` seconds; 5 the guest crashed or was stopped otherwise; 2 the guest
could not start. SIGTERM (a cancelled build) destroys the domain before exiting.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time

POLL_SECONDS = 1.0
IO_REPORT_SECONDS = 10.0
RELAY_START_SECONDS = 60.0


def drop_privileges(uid: int, paths: list[str]) -> None:
    """Give `paths` (and what is below them) to `uid`, then become `uid` with no capability
    and no supplementary group."""
    for path in paths:
        os.chown(path, uid, uid, follow_symlinks=False)
        for directory, subdirectories, files in os.walk(path):
            for name in subdirectories + files:
                os.chown(os.path.join(directory, name), uid, uid, follow_symlinks=False)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _open_regular(path: str) -> int | None:
    """A descriptor of `path` if it is a regular file, not reached through a symbolic link:
    through libvirtd, this runs as host root on files in a directory QEMU's user owns."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _loopback_bytes(path: str) -> int:
    fd = _open_regular(path)
    if fd is None:
        return 0
    with open(fd, encoding="ascii", errors="replace") as counters:
        lines = counters.readlines()
    for line in lines:
        name, _, values = line.partition(":")
        fields = values.split()
        if name.strip() == "lo" and len(fields) > 8 and fields[0].isdigit() \
                and fields[8].isdigit():
            return int(fields[0]) + int(fields[8])
    return 0


def _active(domain: object, error: type[Exception]) -> bool:
    """Whether the domain runs (a transient domain is gone once it stopped)."""
    try:
        return bool(domain.isActive())  # type: ignore[attr-defined]
    except error:
        return False


class ConsoleTail:
    """Prints the console file's new complete lines."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def pump(self, final: bool = False) -> bool:
        fd = _open_regular(self.path)
        if fd is None:
            return False
        with open(fd, "rb") as console:
            console.seek(self.offset)
            chunk = console.read(1 << 20)
        self.offset += len(chunk)
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = lines.pop()
        if final and self.partial:
            lines.append(self.partial)
            self.partial = b""
        for line in lines:
            text = line.decode("utf-8", "replace").replace("\r", "").replace("\x1b", "^[")
            print(f"| {text}", flush=True)
        return bool(chunk)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", required=True)
    parser.add_argument("--embed-root")
    parser.add_argument("--qemu-conf")
    parser.add_argument("--connect")
    parser.add_argument("--relay")
    parser.add_argument("--wait-for", action="append", default=[])
    parser.add_argument("--net-counters", default="/proc/net/dev")
    parser.add_argument("--xml", required=True)
    parser.add_argument("--console", required=True)
    parser.add_argument("--disk", action="append", default=[])
    parser.add_argument("--own", action="append", default=[])
    parser.add_argument("--uid", type=int)
    parser.add_argument("--inactivity", type=float, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, args.site)
    if args.uid is not None:
        drop_privileges(args.uid, args.own)
    relay = None
    if args.relay:
        with open(args.relay, encoding="utf-8") as command:
            relay = subprocess.Popen(json.load(command))
    try:
        return _run(args, relay)
    finally:
        _end(relay)


def _end(relay: subprocess.Popen[bytes] | None) -> None:
    if relay is not None and relay.poll() is None:
        relay.terminate()
        try:
            relay.wait(timeout=10)
        except subprocess.TimeoutExpired:
            relay.kill()


def _relay_ready(relay: subprocess.Popen[bytes], sockets: list[str]) -> bool:
    deadline = time.monotonic() + RELAY_START_SECONDS
    while not all(os.path.exists(path) for path in sockets):
        if relay.poll() is not None or time.monotonic() > deadline:
            print(f"vm: the guest's relay did not start (exit code {relay.poll()})",
                  flush=True)
            return False
        time.sleep(0.1)
    return True


def _run(args: argparse.Namespace, relay: subprocess.Popen[bytes] | None) -> int:
    if relay is not None and not _relay_ready(relay, args.wait_for):
        return 2
    if args.embed_root:
        os.makedirs(os.path.join(args.embed_root, "etc"))
        with open(args.qemu_conf, "rb") as source, \
                open(os.path.join(args.embed_root, "etc", "qemu.conf"), "wb") as target:
            target.write(source.read())
        uri = f"qemu:///embed?root={args.embed_root}"
    else:
        uri = args.connect
    import libvirt

    libvirt.registerErrorHandler(lambda _context, _error: None, None)
    libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=lambda: [libvirt.virEventRunDefaultImpl() for _ in iter(int, 1)],
                     daemon=True).start()
    with open(args.xml, encoding="utf-8") as xml:
        description = xml.read()
    try:
        connection = libvirt.open(uri)
        # libvirtd destroys the domain when this connection closes, however this process
        # ends (the embedded driver has no such flag: its domains end with the sandbox)
        flags = 0 if args.embed_root else libvirt.VIR_DOMAIN_START_AUTODESTROY
        domain = connection.createXML(description, flags)
    except libvirt.libvirtError as error:
        print(f"vm: cannot start the guest: {error}", flush=True)
        return 2
    print(f"vm: started {domain.name()} on {uri.split('?')[0]}"
          + (f" as uid {os.getuid()}" if args.embed_root else ""), flush=True)
    stopped: list[int] = []  # the detail of the lifecycle event "stopped", once it came

    def lifecycle(_connection: object, _domain: object, event: int, detail: int,
                  _opaque: object) -> None:
        if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
            stopped.append(detail)

    connection.domainEventRegisterAny(domain, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                      lifecycle, None)

    def stop(_signum: int, _frame: object) -> None:
        print("vm: cancelled: destroying the guest", flush=True)
        with contextlib.suppress(libvirt.libvirtError):
            domain.destroy()
        _end(relay)
        os._exit(1)

    signal.signal(signal.SIGTERM, stop)
    console = ConsoleTail(args.console)
    started = last_activity = last_report = time.monotonic()
    last_io = -1
    while True:
        console.pump()
        if stopped or not _active(domain, libvirt.libvirtError):
            console.pump(final=True)
            if stopped and stopped[0] in (libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN,
                                          libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED):
                print("vm: the guest powered off", flush=True)
                return 0
            print(f"vm: the guest stopped (event detail {stopped[:1]})", flush=True)
            return 5
        if relay is not None and relay.poll() is not None:
            console.pump(final=True)
            print(f"vm: the guest's relay ended (exit code {relay.returncode})", flush=True)
            with contextlib.suppress(libvirt.libvirtError):
                domain.destroy()
            return 5
        now = time.monotonic()
        try:
            disk_io = sum(sum(domain.blockStats(dev)[i] for i in (1, 3)) for dev in args.disk)
        except libvirt.libvirtError:
            disk_io = last_io  # the domain ended between the two calls: the loop sees it next
        io = disk_io + _loopback_bytes(args.net_counters)
        if io != last_io:
            last_io, last_activity = io, now
        if now - last_report >= IO_REPORT_SECONDS:
            last_report = now
            print(f"vm: io {disk_io} {io - disk_io}", flush=True)
        if now - last_activity > args.inactivity:
            console.pump(final=True)
            print(f"vm: no disk or network I/O for {args.inactivity:.0f} s", flush=True)
            with contextlib.suppress(libvirt.libvirtError):
                domain.destroy()
            return 3
        if now - started > args.timeout:
            console.pump(final=True)
            print(f"vm: still running after {args.timeout:.0f} s", flush=True)
            with contextlib.suppress(libvirt.libvirtError):
                domain.destroy()
            return 4
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
