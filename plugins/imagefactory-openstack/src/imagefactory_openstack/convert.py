"""Turn a raw disk into the file Glance gets, and tell what format a file really is.

The format recorded on the target image and sent to Glance as ``disk_format`` is read back from
the produced file with ``qemu-img info``, never assumed from what was asked: Glance inspects
uploads and rejects (or worse, Nova misboots) an image whose declared format is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildError

DEFAULT_FORMAT = "qcow2"


@dataclass(frozen=True)
class OutputFormat:
    """A qemu-img output format and its extra options."""

    qemu_format: str
    options: tuple[str, ...] = ()


FORMATS = {
    "qcow2": OutputFormat("qcow2", ("-o", "compat=1.1")),
    "qcow2-compressed": OutputFormat("qcow2", ("-o", "compat=1.1", "-c")),
    "raw": OutputFormat("raw"),
}

# qemu-img's names for formats mapped to Glance's disk_format names.
_GLANCE_DISK_FORMATS = {"qcow2": "qcow2", "raw": "raw", "vmdk": "vmdk", "vpc": "vhd",
                        "vhdx": "vhdx", "vdi": "vdi", "iso": "iso"}


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


def glance_disk_format(info: dict[str, Any]) -> str:
    """Glance's disk_format for a file `inspect` described."""
    detected = str(info["format"])
    try:
        return _GLANCE_DISK_FORMATS[detected]
    except KeyError:
        raise BuildError(f"qemu-img detected format {detected!r}, which Glance does not take") \
            from None
