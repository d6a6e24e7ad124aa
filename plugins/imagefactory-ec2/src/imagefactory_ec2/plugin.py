"""The ``ec2`` cloud plugin's hook implementations; each delegates to the module doing the work."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
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

from . import content, delete, push, settings, target_image
from .provider import check_endpoints, parse_provider

IMAGEFACTORY_PLUGIN_API = "1.0"
TARGET = "ec2"


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [CloudTarget(TARGET, description="Amazon EC2 AMIs, written through the EBS direct "
                                            "APIs or S3 + ImportSnapshot")]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return settings.PARAMETERS


@hookimpl
def imagefactory_target_content(target: str, template: Template,
                                parameters: Mapping[str, Any]) -> TargetContent:
    return content.target_content(template)


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageView, source_disk: Path, target: str,
                                     parameters: Mapping[str, Any]) -> BuildResult:
    return target_image.create_target_image(ctx, source_disk, parameters["ec2_image_format"])


@hookimpl
def imagefactory_check_provider(provider: str | dict[str, Any], parameters: Mapping[str, Any],
                                outbound: OutboundPolicy) -> None:
    check_endpoints(parse_provider(provider), parameters.get("endpoints"), outbound)


@hookimpl
def imagefactory_push_image(ctx: BuildContext, template: Template | None,
                            target_image: ImageView, target: str,
                            provider: str | dict[str, Any], credentials: dict[str, Any],
                            parameters: Mapping[str, Any]) -> PushResult:
    return push.push(ctx, template, target_image, provider, credentials, parameters)


@hookimpl
def imagefactory_delete_from_provider(ctx: BuildContext, provider_image: ImageView,
                                      target: str, provider: str | dict[str, Any],
                                      credentials: dict[str, Any],
                                      parameters: Mapping[str, Any]) -> None:
    delete.delete(ctx, provider_image, provider, credentials, parameters)
