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
links ``/vmlinuz`` and ``/initrd.img`` are resolved inside the tree, never on the host); the
host then reads what it wrote only as regular files, without following links.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from imagefactory_core.plugin import BuildContext, BuildError

from .disk import Extent
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


KERNEL_FILES = ("vmlinuz", "initrd.img")
_OUT = "/run/imagefactory-out"


def make_esp(ctx: BuildContext, root: RootFS, disk: Path, extent: Extent, volume_id: str,
             boot: BootConfig, config_dir: Path) -> None:
    """Format the ESP at `extent` of `disk`, install the boot loaders, copy the kernel
    (`config_dir`: an empty host directory for the loaders' files)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "grub.cfg").write_text(_grub_cfg(boot))
    if boot.arch.bios:
        (config_dir / "syslinux.cfg").write_text(_syslinux_cfg(boot))
    kernel = take_kernel(ctx, root, config_dir / "kernel")
    ctx.run(["sh", SCRIPTS / "esp.sh", "install", disk, str(extent.start),
             str(extent.size // 1024), volume_id, boot.arch.grub_target, boot.arch.efi_loader,
             config_dir, kernel])


def copy_kernel(ctx: BuildContext, root: RootFS, disk: Path, extent: Extent) -> None:
    """Copy the tree's current kernel and initramfs (/vmlinuz, /initrd.img) onto the ESP."""
    kernel = take_kernel(ctx, root, root.scratch / "kernel")
    ctx.run(["sh", SCRIPTS / "esp.sh", "kernel", disk, str(extent.start), kernel])


def take_kernel(ctx: BuildContext, root: RootFS, into: Path) -> Path:
    """The tree's /vmlinuz and /initrd.img as host files in the new directory `into`."""
    out = into.with_name(into.name + "-sandbox")
    for directory in (into, out):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    sandbox = ctx.sandbox(root.path, outputs=[(out, _OUT)], enter=root.mounts.enter)
    sandbox.run(["cp", "-L", *(f"/{name}" for name in KERNEL_FILES), f"{_OUT}/"])
    for name in KERNEL_FILES:
        _take_regular(out, name, into / name)
    shutil.rmtree(out)
    return into


def _take_regular(directory: Path, name: str, target: Path) -> None:
    """Copy `directory`/`name`, which a sandbox wrote, only if it is a regular file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(directory / name, flags)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOENT):
            raise BuildError(f"the image has no /{name} the boot loaders could load") from None
        raise
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise BuildError(f"the image's /{name} is not a regular file")
        with target.open("xb") as copy:
            shutil.copyfileobj(source, copy, 1 << 20)


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
