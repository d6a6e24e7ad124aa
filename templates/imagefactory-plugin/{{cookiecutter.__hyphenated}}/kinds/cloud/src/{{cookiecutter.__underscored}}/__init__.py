"""{{ cookiecutter.__hyphenated }}: a cloud plugin for imagefactory.

Its target, ``{{ cookiecutter.__plugin_id }}``, converts base images with ``qemu-img`` to the format
a parameter chooses, and its "provider" is a directory on the service's host that the operator
allows: a push copies the target image there, a delete removes it. Replace `directory` with
your cloud's client and keep the shape: the hooks below only delegate, each module does one job.

Everything comes from `imagefactory_core.plugin`, the one public module of imagefactory-core.
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
    Parameter,
    PushResult,
    Template,
    hookimpl,
)

from . import convert, directory, settings

IMAGEFACTORY_PLUGIN_API = "1.0"


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [settings.TARGET]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return settings.PARAMETERS


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageView, source_disk: Path, target: str,
                                     parameters: Mapping[str, Any]) -> BuildResult:
    disk_format = parameters[settings.FORMAT]
    ctx.progress(0, f"Converting the disk to {disk_format}")
    info = convert.convert(ctx, source_disk, disk_format)
    ctx.progress(100, f"Target image is {disk_format}, {info['actual-size']} bytes on disk")
    return BuildResult(properties={"disk_format": disk_format,
                                   "virtual_size": info["virtual-size"]})


@hookimpl
def imagefactory_check_provider(provider: str | dict[str, Any],
                                parameters: Mapping[str, Any]) -> None:
    directory.provider_directory(provider, parameters[settings.DIRECTORIES])


@hookimpl
def imagefactory_push_image(ctx: BuildContext, target_image: ImageView,
                            provider: str | dict[str, Any],
                            parameters: Mapping[str, Any]) -> PushResult:
    where = directory.provider_directory(provider, parameters[settings.DIRECTORIES])
    name = f"{ctx.image_id}.{target_image.properties.get('disk_format', 'img')}"
    ctx.progress(0, f"Copying the image into {where}")
    directory.copy_in(ctx, target_image.body_path, where, name)
    ctx.progress(100, f"Pushed as {where / name}")
    return PushResult(identifier_on_provider=name, provider_account_identifier=str(where))


@hookimpl
def imagefactory_delete_from_provider(ctx: BuildContext, provider_image: ImageView,
                                      provider: str | dict[str, Any],
                                      parameters: Mapping[str, Any]) -> None:
    where = directory.provider_directory(provider, parameters[settings.DIRECTORIES])
    directory.remove(ctx, where, provider_image)
