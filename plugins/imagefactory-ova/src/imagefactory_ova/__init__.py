"""imagefactory-ova: the ``ova`` target, OVA appliances of vsphere and rhevm target images.

``POST /target_images`` with target ``ova`` and the ``target_image_id`` of a vsphere target
image makes an OVF 1.0 package with its streamOptimized VMDK; of an rhevm target image, the
oVirt OVA layout with a qcow2 disk (``ova_format`` says which, by default the source's
target). Both carry a manifest of SHA-256 digests. See docs/plugins/ova.md.

The OVF writing (`ovf`, `vmware`, `ovirt`, `archive`, `guest`) is also a library: the vsphere
plugin describes the VMs it imports with `vmware.descriptor` and packages its own OVAs with
`vmware.write_ova`. `ovf.schema_errors` checks a descriptor against the OVF envelope schema
shipped in ``schemas/``.
"""

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

from . import package, settings

IMAGEFACTORY_PLUGIN_API = "1.0"

TARGET = CloudTarget("ova", description="OVA appliances (OVF 1.0 + manifest) of vsphere and "
                                        "rhevm target images",
                     from_targets=settings.LAYOUTS)


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [TARGET]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return settings.PARAMETERS


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageView, source_disk: Path, target: str,
                                     parameters: Mapping[str, Any]) -> BuildResult | None:
    return package.make_ova(ctx, template, base_image, source_disk, parameters)
