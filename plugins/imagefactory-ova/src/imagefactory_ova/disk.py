"""What qemu-img says about a disk: its format details and how much data it holds.

The format is always given (``-f``): a source's recorded format is checked, never guessed
from its content (a raw disk's content could pose as another format).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildError, CommandFailed


def info(ctx: BuildContext, path: Path, fmt: str) -> dict[str, Any]:
    """``qemu-img info`` of `path` read as `fmt`; a `BuildError` when it is not one."""
    try:
        done = ctx.run(["qemu-img", "info", "--output=json", "-f", fmt, path], capture=True)
    except CommandFailed as failed:
        raise BuildError(f"{path.name} is not a readable {fmt} disk: {failed}") from None
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def vmdk_subformat(details: dict[str, Any]) -> str | None:
    """The VMDK create type (``streamOptimized`` …) in `info`'s answer for a VMDK."""
    specific = details.get("format-specific") or {}
    return (specific.get("data") or {}).get("create-type")


def populated_size(ctx: BuildContext, path: Path, fmt: str) -> int:
    """The bytes of the virtual disk that hold data (``qemu-img map``), which OVF calls the
    disk's populated size."""
    done = ctx.run(["qemu-img", "map", "--output=json", "-f", fmt, path], capture=True)
    return sum(int(extent["length"]) for extent in json.loads(done.stdout) if extent["data"])


def to_qcow2(ctx: BuildContext, source: Path, fmt: str, target: Path) -> None:
    """Convert `source` (of format `fmt`) to a qcow2 file oVirt reads (compat 1.1)."""
    ctx.run(["qemu-img", "convert", "-f", fmt, "-O", "qcow2", "-o", "compat=1.1", source,
             target])
