"""Target images: the base image's raw disk converted by ``qemu-img convert``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext


def convert(ctx: BuildContext, source: Path, disk_format: str) -> dict[str, Any]:
    """Write `source`, a raw disk, to ``ctx.body_path`` in `disk_format`; return what
    ``qemu-img info`` says of the result (``virtual-size``, ``actual-size`` …)."""
    # -f raw: never let qemu-img guess the format of a disk a template filled; a raw disk that
    # looks like a qcow2 header could otherwise name a host file as its backing file.
    ctx.run(["qemu-img", "convert", "-f", "raw", "-O", disk_format, source, ctx.body_path])
    shown = ctx.run(["qemu-img", "info", "-f", disk_format, "--output=json", ctx.body_path],
                    capture=True)
    info: dict[str, Any] = json.loads(shown.stdout)
    return info
