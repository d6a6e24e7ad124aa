"""A test-only cloud plugin ("fakepackage") whose target is made from fakecloud target images
(`CloudTarget.from_targets`), as the ova target is made from vsphere ones: it wraps the source
image's body and records what it was given. Written against `imagefactory_core.plugin` only."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildResult,
    CloudTarget,
    ImageView,
    Parameter,
    Template,
    hookimpl,
)

IMAGEFACTORY_PLUGIN_API = "1.0"
HEADER = b"FAKEPACKAGE\n"


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [CloudTarget("fakepackage", description="Test-only package of fakecloud images",
                        from_targets=("fakecloud",))]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return [Parameter("package_label", "string", "fake", "recorded in the package's properties")]


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageView, source_disk: Path, target: str,
                                     parameters: Mapping[str, Any]) -> BuildResult:
    ctx.body_path.write_bytes(HEADER + source_disk.read_bytes())
    return BuildResult(properties={
        "disk_format": "fakepackage", "label": parameters["package_label"],
        "source_kind": base_image.kind.value, "source_target": base_image.target,
        "source_marker": base_image.properties.get("marker"), "template_name": template.name})
