"""imagefactory-openstack: the ``openstack-kvm`` cloud target (alias ``openstack``).

Target images are qcow2 (optionally compressed) or raw disks for KVM-based OpenStack clouds,
with cloud-init, a serial console and classic NIC names inside. Pushes go to Glance v2 with
openstacksdk, through Keystone v3 or straight to a Glance endpoint. See
docs/plugins/openstack.md for the provider, credential and parameter formats.

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
from .account import OperatorRules, account_from_request
from .delete import delete
from .push import push

IMAGEFACTORY_PLUGIN_API = "1.0"

TARGET = CloudTarget(
    "openstack-kvm",
    aliases=("openstack",),
    description="qcow2 images for KVM-based OpenStack clouds, pushed to Glance v2",
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
    name = parameters["openstack_image_format"]
    wanted = convert.FORMATS[name].qemu_format
    ctx.progress(0, f"Converting the disk to {name}")
    convert.convert(ctx, source_disk, ctx.body_path, name)
    ctx.check_cancelled()
    info = convert.inspect(ctx, ctx.body_path)
    if info["format"] != wanted:
        raise BuildError(f"qemu-img was asked for {wanted} but the result reads as "
                         f"{info['format']}")
    disk_format = convert.glance_disk_format(info)
    ctx.progress(100, f"Target image is {disk_format}, {info['actual-size']} bytes on disk")
    return BuildResult(properties={"disk_format": disk_format, "image_format": name,
                                   "virtual_size": info["virtual-size"]})


@hookimpl
def imagefactory_check_provider(provider: str | dict[str, Any], credentials: dict[str, Any],
                                parameters: Mapping[str, Any],
                                outbound: OutboundPolicy) -> None:
    account_from_request(provider, credentials, OperatorRules.of(parameters, outbound))


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
