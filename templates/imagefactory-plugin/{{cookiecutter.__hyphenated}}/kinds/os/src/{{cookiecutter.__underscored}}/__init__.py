"""{{ cookiecutter.__hyphenated }}: an OS plugin for imagefactory.

It builds base images of the OS named ``{{ cookiecutter.__plugin_id }}``:
a raw ext4 file system holding ``/etc/os-release`` and the template's files, not bootable.
Replace `contents` and `filesystem` with your OS's installation and keep the shape: the hooks
below only delegate, each module does one job.

Everything comes from `imagefactory_core.plugin`, the one public module of imagefactory-core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildResult,
    OSTarget,
    Parameter,
    Template,
    build_icicle,
    hookimpl,
)

from . import contents, filesystem, settings

IMAGEFACTORY_PLUGIN_API = "1.0"


@hookimpl
def imagefactory_os_targets() -> list[OSTarget]:
    return [settings.OS_TARGET]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return settings.PARAMETERS


@hookimpl
def imagefactory_create_base_image(ctx: BuildContext, template: Template,
                                   parameters: Mapping[str, Any]) -> BuildResult:
    ctx.progress(0, "Reading the template")
    files = contents.image_files(template)
    size = filesystem.disk_size(template, parameters[settings.MAX_DISK_MIB])
    if template.os.install_url:
        ctx.log(f"The install source {template.os.install_url} is not used: "
                f"{settings.OS_NAME} images hold only their template's files")
    ctx.progress(10, f"Writing {len(files)} files into an ext4 file system of "
                     f"{size // filesystem.MIB} MiB")
    filesystem.make_image(ctx, files, size, parameters[settings.LABEL])
    ctx.progress(100, f"{settings.OS_NAME} {template.os.version} image written")
    return BuildResult(icicle=build_icicle(contents.manifest(files), template.description),
                       properties={"disk_format": "raw", "filesystem": "ext4",
                                   "label": parameters[settings.LABEL]})
