"""The EFI system partition: both boot loaders, and the kernel and initramfs they load.

The host cannot mount FAT file systems (no vfat module), and needs not: the partition is
formatted at its offset in the disk file (``mkfs.fat --offset``) and filled with mtools.

* UEFI: a GRUB EFI image at the removable-media path (``\\EFI\\BOOT\\BOOTX64.EFI``), made by
  ``grub-mkimage`` with every module it needs built in; its prefix is ``/EFI/BOOT`` on the
  partition it was loaded from, where it finds ``grub.cfg``. No NVRAM entry is needed.
* BIOS (x86_64): syslinux installed into the same FAT file system (``syslinux --offset``),
  chain-loaded by ``gptmbr.bin`` because the partition is marked LegacyBIOSBootable.

Both load ``/vmlinuz`` and ``/initrd.img`` from this partition. Keeping them on FAT avoids
syslinux reading ext4, which it cannot do for the sparse files ``mkfs.ext4 -d`` writes. Inside
the image, a kernel hook copies new kernels and initramfs images here (``jeos-finish.sh``).

The kernel and initramfs are taken out of the tree by a command in the build sandbox (the
links ``/vmlinuz`` and ``/initrd.img`` are resolved inside the tree, never on the host; see
`imagefactory_debian.kernel`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from imagefactory_core.plugin import BuildContext

from .disk import Extent
from .kernel import KERNEL_FILES, kernel_output, take_kernel_output
from .releases import Architecture
from .rootfs import SCRIPTS, RootFS


@dataclass(frozen=True)
class BootConfig:
    arch: Architecture
    root_uuid: str
    extra_cmdline: str

    @property
    def cmdline(self) -> str:
        console = f"console=tty0 console={self.arch.serial_console},115200n8"
        return " ".join(filter(None, (f"root=UUID={self.root_uuid} ro {console}",
                                      self.extra_cmdline)))


def new_volume_id() -> str:
    """A FAT volume id as mkfs.fat takes it (8 hex digits); fstab spells it XXXX-XXXX."""
    return secrets.token_hex(4).upper()


def fstab_id(volume_id: str) -> str:
    return f"{volume_id[:4]}-{volume_id[4:]}"


_OUT = "/run/imagefactory-out"


def make_esp(ctx: BuildContext, disk: Path, extent: Extent, volume_id: str, boot: BootConfig,
             config_dir: Path, kernel: Path) -> None:
    """Format the ESP at `extent` of `disk`, install the boot loaders, copy the kernel and
    initramfs in the host directory `kernel` (`config_dir`: an empty host directory for the
    loaders' files)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "grub.cfg").write_text(_grub_cfg(boot))
    if boot.arch.bios:
        (config_dir / "syslinux.cfg").write_text(_syslinux_cfg(boot))
    ctx.run(["sh", SCRIPTS / "esp.sh", "install", disk, str(extent.start),
             str(extent.size // 1024), volume_id, boot.arch.grub_target, boot.arch.efi_loader,
             config_dir, kernel])


def copy_kernel(ctx: BuildContext, root: RootFS, disk: Path, extent: Extent) -> None:
    """Copy the tree's current kernel and initramfs (/vmlinuz, /initrd.img) onto the ESP."""
    kernel = take_kernel(ctx, root, root.scratch / "kernel")
    ctx.run(["sh", SCRIPTS / "esp.sh", "kernel", disk, str(extent.start), kernel])


def take_kernel(ctx: BuildContext, root: RootFS, into: Path) -> Path:
    """The tree's /vmlinuz and /initrd.img as host files in the new directory `into`."""
    out = kernel_output(into)
    sandbox = ctx.sandbox(root.path, outputs=[(out, _OUT)], enter=root.mounts.enter)
    sandbox.run(["cp", "-L", *(f"/{name}" for name in KERNEL_FILES), f"{_OUT}/"])
    return take_kernel_output(out, into)


def _grub_cfg(boot: BootConfig) -> str:
    serial = ("serial --unit=0 --speed=115200\n"
              "terminal_input serial console\n"
              "terminal_output serial console\n") if boot.arch.bios else ""
    return (
        "# Written by imagefactory: boot the kernel and initramfs on this partition.\n"
        f"{serial}"
        "set timeout=0\n"
        "menuentry 'Debian GNU/Linux' {\n"
        f"    linux /vmlinuz {boot.cmdline}\n"
        "    initrd /initrd.img\n"
        "}\n"
    )


def _syslinux_cfg(boot: BootConfig) -> str:
    return (
        "# Written by imagefactory: boot the kernel and initramfs on this partition.\n"
        "SERIAL 0 115200\n"
        "DEFAULT debian\n"
        "PROMPT 0\n"
        "TIMEOUT 0\n"
        "LABEL debian\n"
        "  LINUX /vmlinuz\n"
        "  INITRD /initrd.img\n"
        f"  APPEND {boot.cmdline}\n"
    )
