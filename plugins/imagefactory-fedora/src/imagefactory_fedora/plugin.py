"""The ``fedora`` OS plugin's hook implementations; each delegates to the module doing the
work."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildResult,
    OSTarget,
    Parameter,
    TargetContent,
    Template,
    hookimpl,
)

from . import build, settings, target, versions

IMAGEFACTORY_PLUGIN_API = "1.0"


@hookimpl
def imagefactory_os_targets() -> list[OSTarget]:
    return versions.os_targets()


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return settings.PARAMETERS


@hookimpl
def imagefactory_create_base_image(ctx: BuildContext, template: Template,
                                   parameters: Mapping[str, Any]) -> BuildResult:
    return build.create_base_image(ctx, template, parameters)


@hookimpl
def imagefactory_apply_target_content(ctx: BuildContext, template: Template,
                                      content: TargetContent, disk: Path,
                                      parameters: Mapping[str, Any]) -> BuildResult | None:
    return target.apply_target_content(ctx, template, content, disk, parameters)
