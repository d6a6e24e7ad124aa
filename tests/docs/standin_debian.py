"""Stand-in for the Debian plugin in the documentation's examples: the real plugin's
declarations (which templates it builds, which parameters it takes, both checked by the core
when an example's request arrives), with a build that writes a small disk in a moment instead
of running mmdebstrap.

The examples are written for the shipped plugins, so the server that runs them serves the same
OS names, targets and parameters; only the slow work is replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildResult,
    TargetContent,
    Template,
    build_icicle,
    hookimpl,
)
from imagefactory_debian.plugin import imagefactory_os_targets, imagefactory_parameters

IMAGEFACTORY_PLUGIN_API = "1.0"
DISK_BYTES = 1024 * 1024
__all__ = ["imagefactory_os_targets", "imagefactory_parameters"]


def _packages(names: list[str]) -> list[tuple[str, str | None]]:
    return [(f"{name}-1.0-1.amd64", None) for name in names]


@hookimpl
def imagefactory_create_base_image(ctx: BuildContext, template: Template,
                                   parameters: Mapping[str, Any]) -> BuildResult:
    ctx.progress(50, "Writing a stand-in disk")
    with open(ctx.body_path, "wb") as disk:
        disk.write(f"stand-in for {template.os.name} {template.os.version}\n".encode())
        disk.truncate(DISK_BYTES)
    ctx.log(f"wrote a {DISK_BYTES}-byte stand-in disk for {template.name}")
    return BuildResult(icicle=build_icicle(_packages([p.name for p in template.packages]),
                                           template.description))


@hookimpl
def imagefactory_apply_target_content(ctx: BuildContext, template: Template,
                                      content: TargetContent, disk: Path,
                                      parameters: Mapping[str, Any]) -> BuildResult:
    ctx.log(f"target content: {' '.join(content.packages) or 'none'}")
    return BuildResult(icicle=build_icicle(
        _packages([*(p.name for p in template.packages), *content.packages]),
        template.description))
