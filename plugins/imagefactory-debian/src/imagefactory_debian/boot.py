"""Boot a disk image in QEMU and watch its serial console: the proof that an image works.

Public helper, used by this plugin's tests and by the repository's end-to-end tests::

    from imagefactory_debian.boot import boot_and_wait
    console = boot_and_wait(disk, ["my-marker", "login:"], timeout=300, firmware="uefi")

The disk is never modified (QEMU writes to a throw-away snapshot), QEMU always ends when the
call returns or raises, and every call is bounded by `timeout`.

Acceleration: KVM only when it can run stock kernels. Some hosts expose a ``/dev/kvm`` backed by
a software-nested hypervisor (``kvm_pvm``) under which Debian's kernel crashes or hangs; there
the default is TCG (emulation: a minimal image reaches its login prompt in 15-60 s, depending on
the host's load). ``IMAGEFACTORY_QEMU_ACCEL=kvm|tcg`` or the `accel` argument override it.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ACCEL_VARIABLE = "IMAGEFACTORY_QEMU_ACCEL"
FIRMWARES = ("bios", "uefi")
OVMF = Path("/usr/share/ovmf/OVMF.fd")


class BootError(Exception):
    """The machine did not show every marker. `console` holds what the serial console said."""

    def __init__(self, message: str, console: str) -> None:
        super().__init__(f"{message}; last console output:\n{console[-3000:]}")
        self.console = console


def usable_accel() -> str:
    """``kvm`` when KVM is there and can run stock kernels, else ``tcg``; the environment's
    ``IMAGEFACTORY_QEMU_ACCEL`` wins."""
    chosen = os.environ.get(ACCEL_VARIABLE, "").strip().lower()
    if chosen:
        return chosen
    if Path("/sys/module/kvm_pvm").exists() or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    return "kvm"


def qemu_command(disk: Path, firmware: str, accel: str, memory_mib: int, cpus: int) -> list[str]:
    if firmware not in FIRMWARES:
        raise ValueError(f"firmware must be one of {', '.join(FIRMWARES)}, not {firmware!r}")
    argv = ["qemu-system-x86_64", "-machine", "q35",
            "-accel", "tcg,thread=multi" if accel == "tcg" else accel,
            "-m", str(memory_mib), "-smp", str(cpus),
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-monitor", "none", "-nic", "none", "-no-reboot",
            "-drive", f"file={disk},format=raw,if=virtio,snapshot=on"]
    if firmware == "uefi":
        argv += ["-bios", str(OVMF)]
    return argv


def boot_and_wait(disk: Path, markers: Sequence[str], timeout: float = 300, *,
                  firmware: str = "bios", accel: str | None = None, memory_mib: int = 1024,
                  cpus: int = 2) -> str:
    """Boot `disk` and return its console output once every one of `markers` appeared in it.

    Raises `BootError` when `timeout` seconds pass first or the machine stops (QEMU runs with
    ``-no-reboot``, so a kernel panic ends it).
    """
    argv = qemu_command(disk, firmware, accel or usable_accel(), memory_mib, cpus)
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    assert process.stdout is not None
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            console = output.decode("utf-8", "replace")
            missing = [marker for marker in markers if marker not in console]
            if not missing:
                return console
            left = deadline - time.monotonic()
            if left <= 0:
                raise BootError(f"no {missing} on the console after {timeout:.0f} s", console)
            ready, _, _ = select.select([process.stdout], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    process.wait()
                    raise BootError(f"QEMU exited ({process.returncode}) before {missing} "
                                    f"appeared: {' '.join(argv)}", console)
                output += chunk
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
