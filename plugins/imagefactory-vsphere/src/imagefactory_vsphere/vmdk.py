"""Turn a raw disk into a streamOptimized VMDK, the format vSphere imports and OVAs carry, and
read back what was made.

qemu-img's VMDK writer knows the adapter types ide, buslogic, lsilogic and legacyESX; a disk on
a paravirtual (pvscsi) controller is written as lsilogic too, as VMware's own exports do: the
controller is the OVF descriptor's to say.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildError

SUBFORMAT = "streamOptimized"
_ADAPTER = {"lsilogic": "lsilogic", "pvscsi": "lsilogic"}


@dataclass(frozen=True)
class Vmdk:
    virtual_size: int
    populated_size: int
    file_size: int


def convert(ctx: BuildContext, source: Path, target: Path, controller: str) -> None:
    """Write `source` (raw, read-only; its format is given, never probed) to `target`."""
    ctx.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o",
             f"subformat={SUBFORMAT},adapter_type={_ADAPTER[controller]}", source, target])


def inspect(ctx: BuildContext, path: Path) -> Vmdk:
    """What `path` is, read as a VMDK; a `BuildError` unless it is a streamOptimized one."""
    info = _qemu_json(ctx, ["info", "--output=json", "-f", "vmdk", path])
    subformat = ((info.get("format-specific") or {}).get("data") or {}).get("create-type")
    if subformat != SUBFORMAT:
        raise BuildError(f"qemu-img wrote a {subformat} VMDK, not a {SUBFORMAT} one")
    extents = _qemu_json(ctx, ["map", "--output=json", "-f", "vmdk", path])
    return Vmdk(virtual_size=int(info["virtual-size"]),
                populated_size=sum(int(e["length"]) for e in extents if e["data"]),
                file_size=path.stat().st_size)


def _qemu_json(ctx: BuildContext, args: list[Any]) -> Any:
    return json.loads(ctx.run(["qemu-img", *args], capture=True).stdout)
