"""imagefactory-rhevm: the ``rhevm`` cloud target (alias ``ovirt``).

Target images are qcow2 (compat 1.1) or raw disks with the oVirt guest agent inside. A push
uploads the disk through an image transfer to imageio with ovirt-engine-sdk-python and makes a
template of it in a cluster; its id is the provider image's ``identifier_on_provider``. See
docs/plugins/rhevm.md for the provider, credential and parameter formats.

This module holds only the hook implementations; each delegates to the module that does the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildError,
    BuildResult,
    CloudTarget,
    ImageView,
    OutboundPolicy,
    Parameter,
    PushResult,
    TargetContent,
    Template,
    hookimpl,
)

from . import content, convert, settings
from .delete import delete
from .provider import account_from_request
from .push import push

IMAGEFACTORY_PLUGIN_API = "1.0"

TARGET = CloudTarget(
    "rhevm",
    aliases=("ovirt",),
    description="qcow2 or raw disks made into oVirt / RHV templates through imageio",
)


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [TARGET]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return settings.PARAMETERS


@hookimpl
def imagefactory_target_content(target: str, template: Template,
                                parameters: Mapping[str, Any]) -> TargetContent | None:
    return content.target_content(template)


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageView, source_disk: Path, target: str,
                                     parameters: Mapping[str, Any]) -> BuildResult | None:
    name = parameters["rhevm_image_format"]
    wanted = convert.FORMATS[name].qemu_format
    ctx.progress(0, f"Converting the disk to {name}")
    convert.convert(ctx, source_disk, ctx.body_path, name)
    ctx.check_cancelled()
    info = convert.inspect(ctx, ctx.body_path)
    body = convert.describe(info, ctx.body_path)
    if body.disk_format != wanted:
        raise BuildError(f"qemu-img was asked for {wanted} but the result reads as "
                         f"{body.disk_format}")
    properties: dict[str, Any] = {"disk_format": body.disk_format, "image_format": name,
                                  "virtual_size": body.virtual_size}
    compat = convert.qcow2_compat(info)
    if compat is not None:
        properties["qcow2_compat"] = compat
    ctx.progress(100, f"Target image is {body.disk_format}, {body.file_size} bytes")
    return BuildResult(properties=properties)


@hookimpl
def imagefactory_check_provider(provider: str | dict[str, Any], credentials: dict[str, Any],
                                parameters: Mapping[str, Any],
                                outbound: OutboundPolicy) -> None:
    account_from_request(provider, credentials, parameters, outbound)


@hookimpl
def imagefactory_push_image(ctx: BuildContext, template: Template | None,
                            target_image: ImageView, target: str,
                            provider: str | dict[str, Any], credentials: dict[str, Any],
                            parameters: Mapping[str, Any]) -> PushResult:
    return push(ctx, template, target_image, provider, credentials, parameters)


@hookimpl
def imagefactory_delete_from_provider(ctx: BuildContext, provider_image: ImageView,
                                      target: str, provider: str | dict[str, Any],
                                      credentials: dict[str, Any],
                                      parameters: Mapping[str, Any]) -> None:
    delete(ctx, provider_image, provider, credentials, parameters)
