"""Image formats EC2 takes, and telling them apart by their bytes rather than by a name.

The push reads the format from the target image's file, not from what was asked for when it was
built: the body on disk is the truth, whoever produced it.
"""

from __future__ import annotations

import os
from pathlib import Path

from imagefactory_core.plugin import BuildContext

FORMATS = ("raw", "vmdk", "vhd")
"""What `ec2_image_format` accepts: what ImportSnapshot accepts (RAW, VMDK, VHD)."""

QEMU_OUTPUT = {
    "vmdk": ["-O", "vmdk", "-o", "subformat=streamOptimized"],
    # fixed VHD, and exactly the disk's size (qemu rounds to a CHS geometry otherwise)
    "vhd": ["-O", "vpc", "-o", "subformat=fixed,force_size=on"],
    "raw": ["-O", "raw"],
}


def detect_format(path: Path) -> str:
    """``vmdk`` (sparse extent magic), ``vhd`` (``conectix`` footer or header), ``qcow2``,
    else ``raw``."""
    with open(path, "rb") as disk:
        head = disk.read(8)
        size = os.fstat(disk.fileno()).st_size
        tail = os.pread(disk.fileno(), 8, size - 512) if size >= 512 else b""
    if head.startswith(b"KDMV"):
        return "vmdk"
    if head == b"conectix" or tail == b"conectix":
        return "vhd"
    if head.startswith(b"QFI\xfb"):
        return "qcow2"
    return "raw"


def convert(ctx: BuildContext, source: Path, source_format: str, destination: Path,
            destination_format: str) -> None:
    """``qemu-img convert`` (cancellable, logged); raw output stays sparse."""
    qemu_format = "vpc" if source_format == "vhd" else source_format
    ctx.run(["qemu-img", "convert", "-f", qemu_format, *QEMU_OUTPUT[destination_format],
             source, destination])
