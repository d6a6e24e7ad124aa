"""The ``ec2`` cloud plugin's hook implementations; each delegates to the module doing the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imagefactory_core.context import BuildContext
from imagefactory_core.model import BuildResult, CloudTarget, ImageRecord, PushResult, TargetContent
from imagefactory_core.tdl import Template

from imagefactory_core import hookimpl

from . import content, delete, push, settings, target_image

TARGET = "ec2"


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [CloudTarget(TARGET, description="Amazon EC2 AMIs, written through the EBS direct "
                                            "APIs or S3 + ImportSnapshot")]


@hookimpl
def imagefactory_target_content(target: str, template: Template,
                                parameters: dict[str, Any]) -> TargetContent:
    return content.target_content(template)


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageRecord, source_disk: Path, target: str,
                                     parameters: dict[str, Any]) -> BuildResult:
    return target_image.create_target_image(ctx, source_disk,
                                            settings.image_format(parameters, ctx.config))


@hookimpl
def imagefactory_push_image(ctx: BuildContext, template: Template | None,
                            target_image: ImageRecord, target: str,
                            provider: str | dict[str, Any], credentials: dict[str, Any],
                            parameters: dict[str, Any]) -> PushResult:
    return push.push(ctx, template, target_image, provider, credentials, parameters)


@hookimpl
def imagefactory_delete_from_provider(ctx: BuildContext, provider_image: ImageRecord,
                                      target: str, provider: str | dict[str, Any],
                                      credentials: dict[str, Any],
                                      parameters: dict[str, Any]) -> None:
    delete.delete(ctx, provider_image, provider, credentials)
