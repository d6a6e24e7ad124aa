"""Turn a raw disk into the target image's body, and tell what a body really is.

oVirt keeps a disk as qcow2 (its "cow" format) or raw. The body is a plain qcow2 or raw file,
uploaded to the storage domain byte for byte, so what is recorded on the target image
(``disk_format``, ``virtual_size``) is read back from the file with ``qemu-img info``, never
assumed from what was asked; other makers of images (an OVA) rely on it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildError

DEFAULT_FORMAT = "qcow2"
QCOW2_COMPAT = "1.1"  # qcow2 v3: what oVirt 4 calls qcow_version qcow2_v3


@dataclass(frozen=True)
class OutputFormat:
    """A qemu-img output format and its options."""

    qemu_format: str
    options: tuple[str, ...] = ()


FORMATS = {
    "qcow2": OutputFormat("qcow2", ("-o", f"compat={QCOW2_COMPAT}")),
    "raw": OutputFormat("raw"),
}


@dataclass(frozen=True)
class Body:
    """What a push must know of a body: its format (``qcow2`` or ``raw``), the size of the disk
    it holds and the size of the file."""

    disk_format: str
    virtual_size: int
    file_size: int

    @property
    def ovirt_format(self) -> str:
        """oVirt's name for the format (types.DiskFormat)."""
        return "cow" if self.disk_format == "qcow2" else "raw"


def convert(ctx: BuildContext, source: Path, target: Path, name: str) -> None:
    """Write `source` (raw, read-only) to `target` in format `name` (a key of FORMATS).

    The input format is given explicitly: probing a raw disk lets its content pose as another
    format.
    """
    fmt = FORMATS[name]
    ctx.run(["qemu-img", "convert", "-f", "raw", "-O", fmt.qemu_format, *fmt.options,
             source, target])


def inspect(ctx: BuildContext, path: Path) -> dict[str, Any]:
    """``qemu-img info`` of `path` as a dict (format detected from content)."""
    done = ctx.run(["qemu-img", "info", "--output=json", path], capture=True)
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def describe(info: dict[str, Any], path: Path) -> Body:
    """The `Body` `inspect` found at `path`; a format oVirt does not keep is refused, and so is
    a qcow2 that needs another file (a backing file is not uploaded with it)."""
    detected = str(info["format"])
    if detected not in FORMATS:
        raise BuildError(f"the target image is {detected}; oVirt disks are qcow2 or raw")
    if info.get("backing-filename"):
        raise BuildError("the target image is a qcow2 with a backing file, which would not be "
                         "uploaded with it")
    return Body(detected, int(info["virtual-size"]), path.stat().st_size)


def qcow2_compat(info: dict[str, Any]) -> str | None:
    """The qcow2 compat level `inspect` found (``1.1``), None for other formats."""
    specific = info.get("format-specific") or {}
    if specific.get("type") != "qcow2":
        return None
    return str(specific.get("data", {}).get("compat"))
