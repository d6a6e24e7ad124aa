"""Boot a disk image in QEMU and watch its serial console: the proof that an image works.

Public helper, used by this plugin's tests and by the repository's end-to-end tests::

    from imagefactory_debian.boot import boot_and_wait
    console = boot_and_wait(disk, ["my-marker", "login:"], timeout=300, firmware="uefi")

The disk is never modified (QEMU writes to a throw-away snapshot), QEMU always ends when the
call returns or raises, and every call is bounded by `timeout`. The machine is the core's test
harness's (`imagefactory_core.testing.Machine`, no network), so acceleration follows its rules:
KVM only where it can run stock kernels, else TCG; ``IMAGEFACTORY_QEMU_ACCEL`` or `accel`
override it. To boot an image the way a cloud does (metadata, config drive, first-boot checks),
use `imagefactory_core.testing.boot_first_time`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from imagefactory_core.testing import (
    ACCEL_VARIABLE,
    FIRMWARES,
    BootError,
    Machine,
    Qemu,
    usable_accel,
)

__all__ = ["ACCEL_VARIABLE", "FIRMWARES", "BootError", "boot_and_wait", "usable_accel"]


def boot_and_wait(disk: Path, markers: Sequence[str], timeout: float = 300, *,
                  firmware: str = "bios", accel: str | None = None, memory_mib: int = 1024,
                  cpus: int = 2) -> str:
    """Boot the raw `disk` and return its console output once every one of `markers` appeared.

    Raises `BootError` (its ``console`` attribute holds the output) when `timeout` seconds
    pass first or the machine stops (QEMU runs with ``-no-reboot``, so a kernel panic ends
    it)."""
    machine = Machine(disk=disk, firmware=firmware, accel=accel, memory_mib=memory_mib,
                      cpus=cpus)
    with Qemu(machine) as vm:
        return vm.wait_for(markers, timeout)
