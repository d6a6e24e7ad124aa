"""Stand-in for the ec2 plugin in the documentation's examples: the real plugin's target,
parameters, target content, provider check and credential parsing, with a push that records
an AMI id instead of uploading (see `standin_debian` for why)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildResult,
    ImageView,
    PushResult,
    Template,
    hookimpl,
)
from imagefactory_ec2.credentials import parse_credentials
from imagefactory_ec2.plugin import (
    imagefactory_check_provider,
    imagefactory_cloud_targets,
    imagefactory_parameters,
    imagefactory_target_content,
)
from imagefactory_ec2.provider import parse_provider

IMAGEFACTORY_PLUGIN_API = "1.0"
__all__ = ["imagefactory_check_provider", "imagefactory_cloud_targets",
           "imagefactory_parameters", "imagefactory_target_content"]


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageView, source_disk: Path, target: str,
                                     parameters: Mapping[str, Any]) -> BuildResult:
    shutil.copyfile(source_disk, ctx.body_path)
    return BuildResult(properties={"disk_format": parameters["ec2_image_format"]})


@hookimpl
def imagefactory_push_image(ctx: BuildContext, template: Template | None,
                            target_image: ImageView, target: str,
                            provider: str | dict[str, Any], credentials: dict[str, Any],
                            parameters: Mapping[str, Any]) -> PushResult:
    region = parse_provider(provider).region
    account = parse_credentials(credentials).account_number
    ctx.log(f"stand-in push to {region}")
    return PushResult(f"ami-{uuid.uuid4().hex[:17]}", account)


@hookimpl
def imagefactory_delete_from_provider(ctx: BuildContext, provider_image: ImageView,
                                      target: str, provider: str | dict[str, Any],
                                      credentials: dict[str, Any],
                                      parameters: Mapping[str, Any]) -> None:
    parse_credentials(credentials)
    ctx.log(f"stand-in deregistered {provider_image.identifier_on_provider}")
