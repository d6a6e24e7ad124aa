"""What differs between the Debian releases and architectures this plugin builds.

A TDL names a release by number (``12``, also ``12.5``) or codename (``bookworm``) and an
architecture by its kernel name (``x86_64``); Debian speaks codenames and dpkg architectures.
An architecture is offered only when this host can build it: mmdebstrap must be able to run the
target's binaries (natively or through binfmt/qemu-user, which ``arch-test`` checks) and the
host must have GRUB's EFI modules for it.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from imagefactory_core.plugin import BuildError

VERSIONS_PATTERN = r"(11|12|13)(\.[0-9]+)?|bullseye|bookworm|trixie"

_CODENAMES = {"11": "bullseye", "12": "bookworm", "13": "trixie"}

# Since bookworm systemd-resolved is its own package; bullseye ships it inside systemd.
_OWN_RESOLVED = frozenset({"bookworm", "trixie"})

GRUB_LIBRARY = Path("/usr/lib/grub")


@dataclass(frozen=True)
class Architecture:
    """How one TDL architecture is built and booted."""

    tdl: str  # x86_64
    dpkg: str  # amd64
    kernel_package: str
    grub_target: str  # the GRUB platform of the EFI image
    efi_loader: str  # the removable-media path name firmware looks for in \EFI\BOOT
    serial_console: str
    bios: bool  # a PC: syslinux for BIOS firmware too, loaders talk to the 16550 UART (COM1)
    root_type: str  # GPT partition type of the root file system (Discoverable Partitions)


ARCHITECTURES = {
    "x86_64": Architecture("x86_64", "amd64", "linux-image-amd64", "x86_64-efi", "BOOTX64.EFI",
                           "ttyS0", True, "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"),
    "aarch64": Architecture("aarch64", "arm64", "linux-image-arm64", "arm64-efi", "BOOTAA64.EFI",
                            "ttyAMA0", False, "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"),
}


@dataclass(frozen=True)
class Release:
    codename: str

    @property
    def base_packages(self) -> tuple[str, ...]:
        """What every image has on top of Debian's minbase: a kernel, systemd as init, udev,
        networking with name resolution, and zstd for a fast initramfs."""
        resolved = ("systemd-resolved",) if self.codename in _OWN_RESOLVED else ()
        return ("systemd", "systemd-sysv", "udev", *resolved, "zstd")

    @property
    def mirror_suites(self) -> tuple[str, ...]:
        """The suites read from the main mirror: the release and its stable updates."""
        return (self.codename, f"{self.codename}-updates")

    @property
    def security_suite(self) -> str:
        return f"{self.codename}-security"


def release(version: str) -> Release:
    """The release a TDL ``<os><version>`` names."""
    text = version.strip().lower()
    if not re.fullmatch(VERSIONS_PATTERN, text):
        raise BuildError(f"Debian version '{version}' is not supported; use 11, 12 or 13 "
                         "(bullseye, bookworm, trixie)")
    return Release(_CODENAMES.get(text.split(".")[0], text))


def architecture(arch: str) -> Architecture:
    """The architecture a TDL ``<os><arch>`` names, if this host can build it."""
    if arch not in buildable_architectures():
        raise BuildError(f"this host cannot build Debian for {arch}; it can build "
                         f"{', '.join(buildable_architectures())}")
    return ARCHITECTURES[arch]


@functools.cache
def buildable_architectures() -> tuple[str, ...]:
    return tuple(name for name, arch in ARCHITECTURES.items() if _can_build(arch))


def _can_build(arch: Architecture) -> bool:
    if not (GRUB_LIBRARY / arch.grub_target).is_dir() or shutil.which("arch-test") is None:
        return False
    try:
        return subprocess.run(["arch-test", arch.dpkg], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
