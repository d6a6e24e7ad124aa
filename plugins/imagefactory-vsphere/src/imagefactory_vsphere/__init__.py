"""imagefactory-vsphere: the ``vsphere`` cloud target.

Target images are streamOptimized VMDKs (or OVAs of them) with open-vm-tools inside; pushes
import them into a vCenter with pyvmomi (OvfManager, ImportVApp, an NFC lease) as VM
templates; deletes destroy the template. See docs/plugins/vsphere.md for the provider,
credential and parameter formats.

This module holds only the hook implementations; each delegates to the module that does the job.
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
    OutboundPolicy,
    Parameter,
    PushResult,
    TargetContent,
    Template,
    hookimpl,
)

from . import content, settings
from .account import OperatorRules, account_from_request
from .delete import delete
from .push import push
from .target_image import create_target_image

IMAGEFACTORY_PLUGIN_API = "1.0"

TARGET = CloudTarget("vsphere", description="VMware vSphere VM templates from streamOptimized "
                                            "VMDKs, imported with pyvmomi")


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [TARGET]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return settings.PARAMETERS


@hookimpl
def imagefactory_target_content(target: str, template: Template,
                                parameters: Mapping[str, Any]) -> TargetContent | None:
    return content.target_content()


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageView, source_disk: Path, target: str,
                                     parameters: Mapping[str, Any]) -> BuildResult | None:
    return create_target_image(ctx, template, source_disk, parameters)


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
