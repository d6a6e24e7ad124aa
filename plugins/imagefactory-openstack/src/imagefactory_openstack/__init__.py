"""imagefactory-openstack: the ``openstack-kvm`` cloud target (alias ``openstack``).

Target images are qcow2 (optionally compressed) or raw disks for KVM-based OpenStack clouds,
with cloud-init, a serial console and classic NIC names inside. Pushes go to Glance v2 with
openstacksdk, through Keystone v3 or straight to a Glance endpoint. See
docs/plugins/openstack.md for the provider, credential and parameter formats.

This module holds only the hook implementations; each delegates to the module that does the job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imagefactory_core.context import BuildContext
from imagefactory_core.errors import BuildError
from imagefactory_core.model import (
    BuildResult,
    CloudTarget,
    ImageRecord,
    PushResult,
    TargetContent,
)
from imagefactory_core.tdl import Template

from imagefactory_core import hookimpl

from . import content, convert, digest
from .delete import delete
from .push import push

TARGET = CloudTarget(
    "openstack-kvm",
    aliases=("openstack",),
    description="qcow2 images for KVM-based OpenStack clouds, pushed to Glance v2",
)


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [TARGET]


@hookimpl
def imagefactory_target_content(target: str, template: Template,
                                parameters: dict[str, Any]) -> TargetContent | None:
    return content.target_content(template)


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageRecord, source_disk: Path, target: str,
                                     parameters: dict[str, Any]) -> BuildResult | None:
    name = convert.requested_format(parameters, ctx.config)
    wanted = convert.FORMATS[name].qemu_format
    ctx.progress(0, f"Converting the disk to {name}")
    convert.convert(ctx, source_disk, ctx.body_path, name)
    ctx.check_cancelled()
    info = convert.inspect(ctx, ctx.body_path)
    if info["format"] != wanted:
        raise BuildError(f"qemu-img was asked for {wanted} but the result reads as "
                         f"{info['format']}")
    disk_format = convert.glance_disk_format(info)
    ctx.progress(90, f"Computing the {digest.BODY_DIGEST} of the {disk_format} image")
    body_digest = digest.file_digest(ctx.body_path, digest.BODY_DIGEST, ctx.check_cancelled)
    ctx.progress(100, f"Target image is {disk_format}, {info['actual-size']} bytes on disk")
    return BuildResult(properties={"disk_format": disk_format, "image_format": name,
                                   "virtual_size": info["virtual-size"],
                                   digest.BODY_DIGEST: body_digest})


@hookimpl
def imagefactory_push_image(ctx: BuildContext, template: Template | None,
                            target_image: ImageRecord, target: str,
                            provider: str | dict[str, Any], credentials: dict[str, Any],
                            parameters: dict[str, Any]) -> PushResult:
    return push(ctx, template, target_image, provider, credentials, parameters)


@hookimpl
def imagefactory_delete_from_provider(ctx: BuildContext, provider_image: ImageRecord,
                                      target: str, provider: str | dict[str, Any],
                                      credentials: dict[str, Any],
                                      parameters: dict[str, Any]) -> None:
    delete(ctx, provider_image, provider, credentials)
