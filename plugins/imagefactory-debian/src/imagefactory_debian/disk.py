"""The raw disk: a GPT with an EFI system partition and an ext4 root, written without mounting.

Layout (1 MiB aligned)::

    0       protective MBR (syslinux's gptmbr.bin on x86_64), GPT header and entries
    1 MiB   EFI system partition, FAT32, 255 MiB: GRUB (UEFI), syslinux (BIOS), kernel, initramfs
    256 MiB root, ext4, to 1 MiB before the end (the backup GPT)

The root is last so that cloud-init's growpart can grow it to the size of the volume. The disk
is a sparse file of the template's ``<disk><size>`` (10 GiB when absent): only written blocks
take space. The root file system is made from the tree by ``mkfs.ext4 -d`` at the partition's
offset, with no loop device and no mount (or, usually, copied from the JEOS tree's cached image
and changed: `rootimage`). Its journal is not written: `partition` made the disk
a new sparse file, whose unwritten blocks read as zeros, which is all zeroing would write (64 MiB
per image: 15-35 % of mkfs's time when measured, and 64 MiB less disk in the image body).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from imagefactory_core.plugin import BuildContext, BuildError, CommandFailed

from .kernel import COPY_FROM_TREE, kernel_output, take_kernel_output
from .namespace import PrivateMounts
from .releases import Architecture
from .rootfs import SCRIPTS

MiB = 1 << 20
GiB = 1 << 30
DEFAULT_SIZE = 10 * GiB
ESP_START = 1 * MiB
ESP_SIZE = 255 * MiB
ROOT_START = ESP_START + ESP_SIZE
MIN_ROOT_SIZE = 512 * MiB
SECTOR = 512
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_MBR = Path("/usr/lib/syslinux/mbr/gptmbr.bin")


@dataclass(frozen=True)
class Extent:
    start: int  # bytes from the start of the disk
    size: int  # bytes


@dataclass(frozen=True)
class Layout:
    size: int
    esp: Extent
    root: Extent

    @classmethod
    def for_size(cls, requested: int | None) -> Layout:
        """The layout of a new disk of `requested` bytes (rounded up to whole MiB)."""
        size = -(-(requested or DEFAULT_SIZE) // MiB) * MiB
        root_size = size - ROOT_START - MiB
        if root_size < MIN_ROOT_SIZE:
            smallest = (ROOT_START + MIN_ROOT_SIZE) // MiB + 1
            raise BuildError(f"<disk><size> must be at least {smallest} MiB for a Debian image, "
                             f"not {requested} bytes")
        return cls(size, Extent(ESP_START, ESP_SIZE), Extent(ROOT_START, root_size))

    @classmethod
    def read(cls, ctx: BuildContext, disk: Path, arch: Architecture) -> Layout:
        """The layout of a disk this plugin made, from its partition table."""
        table = json.loads(ctx.run(["sfdisk", "--json", disk], capture=True).stdout)
        found: dict[str, Extent] = {}
        for partition in table["partitiontable"].get("partitions", []):
            kind = partition["type"].upper()
            extent = Extent(partition["start"] * SECTOR, partition["size"] * SECTOR)
            if kind == ESP_TYPE:
                found["esp"] = extent
            elif kind == arch.root_type:
                found["root"] = extent
        if set(found) != {"esp", "root"}:
            raise BuildError(f"{disk} is not a disk of the debian plugin: it needs an EFI "
                             f"system partition and a {arch.tdl} root partition")
        return cls(disk.stat().st_size, found["esp"], found["root"])


def partition(ctx: BuildContext, disk: Path, layout: Layout, arch: Architecture) -> None:
    """Create `disk` as a sparse file with the partition table of `layout`."""
    disk.unlink(missing_ok=True)
    with disk.open("wb") as body:
        body.truncate(layout.size)
    bios = ', attrs="LegacyBIOSBootable"' if arch.bios else ""
    table = (
        "label: gpt\n"
        f"start={layout.esp.start // SECTOR}, size={layout.esp.size // SECTOR}, "
        f'type={ESP_TYPE}, name="EFI system"{bios}\n'
        f"start={layout.root.start // SECTOR}, size={layout.root.size // SECTOR}, "
        f'type={arch.root_type}, name="root"\n'
    )
    ctx.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk], input=table.encode())
    if arch.bios:
        # BIOS boot: gptmbr.bin chain-loads the partition marked LegacyBIOSBootable (the ESP,
        # where syslinux is installed); it fits in the MBR's 440 bytes of boot code.
        with disk.open("r+b") as body:
            body.write(GPT_MBR.read_bytes()[:440])


def root_fs_command(tree: str, disk: str, uuid: str, extent: Extent) -> list[str]:
    """``mkfs.ext4 -d`` of `tree` into `extent` of `disk` (paths in a sandbox)."""
    return ["mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "root", "-U", uuid,
            "-E", f"offset={extent.start},lazy_journal_init=1", "-d", tree, disk,
            f"{extent.size // 1024}k"]


def make_root_fs(ctx: BuildContext, mounts: PrivateMounts, tree: Path, disk: Path,
                 extent: Extent, uuid: str, kernel: Path) -> None:
    """Write an ext4 file system holding `tree` (a path inside `mounts`) into `extent`, and
    copy the tree's /vmlinuz and /initrd.img into the host directory `kernel`.

    The host's mkfs.ext4 runs in a sandbox with the tree shown read-only: it sees every file
    with its image owner (the tree is owned by the sandbox's ids on the host) and records that,
    and nothing of the tree is read with host root's rights. The kernel is copied in the same
    sandbox, saving a sandbox of its own: the links resolve within the tree (Debian's are
    relative) or among the host's public programs, the only other paths it shows.
    """
    out = kernel_output(kernel)
    sandbox = ctx.sandbox(None, host_tools=True, enter=mounts.enter,
                          inputs=[(tree, "/tree"), (SCRIPTS / "mke2fs.conf", "/etc/mke2fs.conf")],
                          outputs=[(disk, "/disk"), (out, "/kernel")])
    argv = ["/bin/sh", "-c", f'{COPY_FROM_TREE} && exec "$@"',
            "mkfs.ext4", *root_fs_command("/tree", "/disk", uuid, extent)]
    try:
        sandbox.run(argv)
        take_kernel_output(out, kernel)
    except CommandFailed as error:
        if "allocate" in error.output_tail or "space" in error.output_tail:
            raise BuildError(f"the image's files do not fit in a root file system of "
                             f"{extent.size // MiB} MiB: make <disk><size> larger") from error
        raise
    finally:
        os.chown(disk, 0, 0)  # the sandbox had it; the image body is the service's again
