"""One QEMU machine: what it is made of (`Machine`, `Network`) and running it (`Qemu`).

Acceleration: KVM only when it can run stock kernels. Some hosts expose a ``/dev/kvm`` backed by
a software-nested hypervisor (``kvm_pvm``) under which Debian's kernel crashes or hangs; there
the default is TCG (emulation: a minimal image reaches its login prompt in 15-60 s, depending on
the host's load). ``IMAGEFACTORY_QEMU_ACCEL=kvm|tcg`` or `Machine.accel` override it.

The network is QEMU's user-mode network with ``restrict=on``: the guest gets DHCP from QEMU and
reaches nothing but the services forwarded to it (`Forward`), each relayed to a server on the
host's loopback. No packet from the guest goes anywhere else.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .console import Console

ACCEL_VARIABLE = "IMAGEFACTORY_QEMU_ACCEL"
FIRMWARES = ("bios", "uefi")
# Image format names as imagefactory says them → QEMU's driver names.
DISK_FORMATS = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc"}
DISK_INTERFACES = ("virtio", "nvme")
# Debian's OVMF: firmware code plus a template of its variable store (each boot gets a copy,
# as a hypervisor gives each instance its own NVRAM), or the older all-in-one image.
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
OVMF_COMBINED = Path("/usr/share/ovmf/OVMF.fd")
RELAY = Path(__file__).with_name("relay.py")


def usable_accel() -> str:
    """``kvm`` when KVM is there and can run stock kernels, else ``tcg``; the environment's
    ``IMAGEFACTORY_QEMU_ACCEL`` wins."""
    chosen = os.environ.get(ACCEL_VARIABLE, "").strip().lower()
    if chosen:
        return chosen
    if Path("/sys/module/kvm_pvm").exists() or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    return "kvm"


def split_ovmf() -> bool:
    """True when the firmware code and variable template are there as separate files."""
    return OVMF_CODE.exists() and OVMF_VARS.exists()


def option(value: str) -> str:
    """`value` as one field of a QEMU option (commas doubled)."""
    return value.replace(",", ",,")


@dataclass(frozen=True)
class Forward:
    """A TCP service the guest reaches at ``guest_address:guest_port``, served by a server on
    the host's loopback port `host_port` (QEMU starts a relay for each guest connection)."""

    guest_address: str
    guest_port: int
    host_port: int

    def rule(self) -> str:
        relay = f"{sys.executable} -I -S {RELAY} 127.0.0.1 {self.host_port}"
        return f"guestfwd=tcp:{self.guest_address}:{self.guest_port}-cmd:{option(relay)}"


@dataclass(frozen=True)
class Network:
    """The guest's one NIC on QEMU's restricted user-mode network.

    QEMU accepts a forward only to an address inside `subnet`, so a cloud whose services sit at
    a link-local address (169.254.169.254) gets the subnet 169.254.0.0/16."""

    subnet: str = "10.0.2.0/24"
    forwards: tuple[Forward, ...] = ()
    mac: str = "52:54:00:12:34:56"
    model: str = "virtio-net-pci"

    @property
    def guest_address(self) -> str:
        """The address QEMU's DHCP server gives the guest: 10.0.2.15's host part in `subnet`
        (169.254.2.15 in 169.254.0.0/16)."""
        return self._host("10.0.2.15")

    @property
    def gateway(self) -> str:
        """QEMU's own address on the network (router, DHCP server)."""
        return self._host("10.0.2.2")

    def _host(self, default: str) -> str:
        network = ipaddress.ip_network(self.subnet)
        host_part = int(ipaddress.ip_address(default)) & int(network.hostmask)
        return str(network.network_address + host_part)

    def argv(self) -> list[str]:
        netdev = ",".join(["user", "id=net0", f"net={self.subnet}", "restrict=on",
                           *(forward.rule() for forward in self.forwards)])
        return ["-netdev", netdev, "-device", f"{self.model},netdev=net0,mac={self.mac}"]


@dataclass(frozen=True)
class Machine:
    """What QEMU boots. The disk is never changed when `snapshot` is set (writes go to a
    throw-away snapshot). QEMU ends when the guest reboots or powers off (``-no-reboot``), so a
    kernel panic ends the run too; to boot the machine again, run it again.

    Why not let QEMU reset the guest itself: under TCG, the firmware and boot loader of a
    guest reset inside the same QEMU run take about ten times longer (OVMF 8 s → 44 s, GRUB
    loading the kernel 0.4 s → 30 s, measured), as TCG throws away the code it translated for
    the previous kernel page by page. A fresh QEMU on the same disk (and, for UEFI, the same
    variable store) is the same machine to the guest."""

    disk: Path
    disk_format: str = "raw"
    firmware: str = "bios"
    disk_interface: str = "virtio"
    memory_mib: int = 1024
    cpus: int = 1
    accel: str | None = None
    network: Network | None = None
    smbios: tuple[str, ...] = ()
    cdroms: tuple[Path, ...] = ()
    snapshot: bool = True

    def argv(self, uefi_vars: Path | None = None) -> list[str]:
        """QEMU's command line. With UEFI and split OVMF files, `uefi_vars` is this machine's
        copy of the variable store (`Qemu` makes it)."""
        if self.firmware not in FIRMWARES:
            raise ValueError(f"firmware must be one of {', '.join(FIRMWARES)}, "
                             f"not {self.firmware!r}")
        if self.disk_format not in DISK_FORMATS:
            raise ValueError(f"disk format must be one of {', '.join(DISK_FORMATS)}, "
                             f"not {self.disk_format!r}")
        if self.disk_interface not in DISK_INTERFACES:
            raise ValueError(f"disk interface must be one of {', '.join(DISK_INTERFACES)}, "
                             f"not {self.disk_interface!r}")
        accel = self.accel or usable_accel()
        argv = ["qemu-system-x86_64", "-machine", "q35",
                "-accel", "tcg,thread=multi" if accel == "tcg" else accel,
                "-m", str(self.memory_mib), "-smp", str(self.cpus),
                "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
                "-monitor", "none", "-no-reboot", "-device", "virtio-rng-pci"]
        argv += self._firmware(uefi_vars)
        drive = (f"file={option(str(self.disk))},format={DISK_FORMATS[self.disk_format]},"
                 f"if=none,id=disk0,cache=unsafe,snapshot={'on' if self.snapshot else 'off'}")
        device = ("virtio-blk-pci,drive=disk0" if self.disk_interface == "virtio"
                  else "nvme,drive=disk0,serial=vol0imagefactory")
        argv += ["-drive", drive, "-device", device]
        for index, image in enumerate(self.cdroms):
            argv += ["-drive", f"file={option(str(image))},format=raw,if=none,id=cd{index},"
                               "media=cdrom,readonly=on",
                     "-device", f"ide-cd,drive=cd{index},bus=ide.{index}"]
        argv += self.network.argv() if self.network else ["-nic", "none"]
        for table in self.smbios:
            argv += ["-smbios", table]
        return argv

    def _firmware(self, uefi_vars: Path | None) -> list[str]:
        if self.firmware == "bios":
            return []
        if not split_ovmf():
            return ["-bios", str(OVMF_COMBINED)]
        if uefi_vars is None:
            raise ValueError("UEFI with split OVMF files needs a copy of the variable store")
        return ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={option(str(OVMF_CODE))}",
                "-drive", f"if=pflash,format=raw,unit=1,file={option(str(uefi_vars))}"]


class Qemu:
    """A running `Machine` (a context manager): QEMU started, its console read into `console`,
    and QEMU always ended on exit. The console is also written to `log_file` when given.

    `uefi_vars` is where the machine's UEFI variable store lives (made from OVMF's template if
    it is not there yet): give the same file to boot the same machine again. Without it, each
    run gets a fresh store that is removed afterwards."""

    def __init__(self, machine: Machine, log_file: Path | None = None,
                 uefi_vars: Path | None = None) -> None:
        self.machine = machine
        self.log_file = log_file
        self.uefi_vars = uefi_vars
        self.argv: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.console = Console(time.monotonic(), log_file)
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Qemu:
        uefi_vars = None
        if self.machine.firmware == "uefi" and split_ovmf():
            if self.uefi_vars is None:
                self._scratch = tempfile.TemporaryDirectory(prefix="imagefactory-qemu-")
                uefi_vars = Path(self._scratch.name) / "OVMF_VARS.fd"
            else:
                uefi_vars = self.uefi_vars
            if not uefi_vars.exists():
                shutil.copyfile(OVMF_VARS, uefi_vars)
        try:
            self.argv = self.machine.argv(uefi_vars)
            self.console.started = time.monotonic()
            # QEMU gets SIGKILL when this thread's process dies, even by SIGKILL (a test run
            # killed at its time limit): it must not run on, using a core, with nobody to stop it.
            self.process = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", *self.argv],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        except BaseException:
            self.stop()
            raise
        self._reader = threading.Thread(target=self._read, name="qemu-console", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while chunk := os.read(fd, 65536):
            self.console.feed(chunk)
        self.process.wait()
        self.console.feed(b"")

    def wait_for(self, markers: Sequence[str], timeout: float,
                 failed: Iterable[Callable[[str], str | None]] = ()) -> str:
        """Wait until every one of `markers` is on the console; return the console then."""
        def pending(text: str) -> str | None:
            missing = [marker for marker in markers if marker not in text]
            return f"{missing}" if missing else None
        return self.console.wait(pending, timeout, failed)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if process is not None and process.stdout is not None:
            process.stdout.close()
        self.console.close()
        if self._scratch is not None:
            self._scratch.cleanup()


def boot_and_wait(disk: Path, markers: Sequence[str], timeout: float = 300, *,
                  firmware: str = "bios", accel: str | None = None, memory_mib: int = 1024,
                  cpus: int = 2) -> str:
    """Boot `disk` (no network, writes to a throw-away snapshot) and return its console output
    once every one of `markers` appeared in it: the plain proof that a base image boots.

    Raises `BootError` (its ``console`` attribute holds the output) when `timeout` seconds
    pass first or the machine stops (QEMU runs with ``-no-reboot``, so a kernel panic ends
    it). To boot an image the way a cloud does, use `boot_first_time`."""
    machine = Machine(disk=disk, firmware=firmware, accel=accel, memory_mib=memory_mib,
                      cpus=cpus)
    with Qemu(machine) as vm:
        return vm.wait_for(markers, timeout)
