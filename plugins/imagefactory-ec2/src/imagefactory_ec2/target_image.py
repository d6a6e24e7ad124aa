"""The ``ec2`` target image: the adapted base disk, as raw (sparse), VMDK or VHD.

Raw is what the EBS direct upload wants and the default. VMDK (streamOptimized) and fixed VHD
are what people take to ImportSnapshot/ImportImage or to other tools.
"""

from __future__ import annotations

from pathlib import Path

from imagefactory_core.plugin import BuildContext, BuildResult

from .disk_format import convert
from .sparse import copy_sparse


def create_target_image(ctx: BuildContext, source_disk: Path, image_format: str) -> BuildResult:
    """Write `source_disk` (raw, read-only) to ``ctx.body_path`` in `image_format`."""
    ctx.progress(0, f"Writing the ec2 target image ({image_format})")
    if image_format == "raw":
        copy_sparse(ctx, source_disk, ctx.body_path)
    else:
        convert(ctx, source_disk, "raw", ctx.body_path, image_format)
    ctx.progress(100, "ec2 target image written")
    return BuildResult(properties={"disk_format": image_format})
