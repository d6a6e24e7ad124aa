"""The ``debian`` OS plugin's hook implementations; each delegates to the module doing the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imagefactory_core.context import BuildContext
from imagefactory_core.model import BuildResult, OSTarget, TargetContent
from imagefactory_core.tdl import Template

from imagefactory_core import hookimpl

from . import build, releases, target


@hookimpl
def imagefactory_os_targets() -> list[OSTarget]:
    return [OSTarget("Debian", releases.VERSIONS_PATTERN, releases.buildable_architectures(),
                     description="Debian 11, 12 and 13 (bullseye, bookworm, trixie): bootable "
                                 "BIOS and UEFI raw disks built with mmdebstrap, no VM")]


@hookimpl
def imagefactory_create_base_image(ctx: BuildContext, template: Template,
                                   parameters: dict[str, Any]) -> BuildResult:
    return build.create_base_image(ctx, template, parameters)


@hookimpl
def imagefactory_apply_target_content(ctx: BuildContext, template: Template,
                                      content: TargetContent, disk: Path) -> BuildResult | None:
    return target.apply_target_content(ctx, template, content, disk)
