"""A test-only cloud plugin ("fakecloud"): an in-memory cloud behind the real hook contract.

`CLOUD` holds what was "uploaded", so tests can check pushes and deletes. Credentials must be
``{"fake_credentials": {"username": …, "password": "good"}}`` (XML or JSON); anything else is
refused like a real cloud would. Written against `imagefactory_core.plugin` only.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildError,
    BuildResult,
    CloudTarget,
    ImageView,
    Parameter,
    PushResult,
    TargetContent,
    Template,
    hookimpl,
)

IMAGEFACTORY_PLUGIN_API = "1.0"
CLOUD: dict[str, dict[str, Any]] = {}


def _login(credentials: dict[str, Any]) -> str:
    creds = credentials.get("fake_credentials", credentials)
    if creds.get("password") != "good":
        raise BuildError("fakecloud refused the credentials: wrong username or password")
    return str(creds.get("username", "anonymous"))


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [CloudTarget("fakecloud", aliases=("fake",), description="Test-only cloud")]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return [
        Parameter("fake_push_seconds", "number", 0, "how long the fake push sleeps",
                  minimum=0, maximum=600),
        Parameter("fake_format", "string", "raw", "the target image's format",
                  choices=("raw", "qcow2")),
        Parameter("marker", "string", help="recorded in the target image's properties"),
    ]


@hookimpl
def imagefactory_target_content(target: str, template: Template,
                                parameters: Mapping[str, Any]) -> TargetContent:
    return TargetContent(packages=("fake-cloud-agent",))


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageView, source_disk: Path, target: str,
                                     parameters: Mapping[str, Any]) -> BuildResult:
    ctx.progress(50, "Copying disk")
    shutil.copyfile(source_disk, ctx.body_path)
    return BuildResult(properties={"disk_format": parameters["fake_format"],
                                   "marker": parameters["marker"]})


@hookimpl
def imagefactory_push_image(ctx: BuildContext, template: Template | None,
                            target_image: ImageView, target: str,
                            provider: str | dict[str, Any], credentials: dict[str, Any],
                            parameters: Mapping[str, Any]) -> PushResult:
    account = _login(credentials)
    seconds = parameters["fake_push_seconds"]
    if seconds:
        ctx.run(["sleep", str(seconds)])
    digest = hashlib.sha256(target_image.body_path.read_bytes()).hexdigest()
    image_id = f"fake-{uuid.uuid4().hex[:8]}"
    CLOUD[image_id] = {"provider": provider, "sha256": digest, "account": account}
    ctx.progress(100, "Uploaded")
    return PushResult(image_id, account, {"sha256": digest})


@hookimpl
def imagefactory_delete_from_provider(ctx: BuildContext, provider_image: ImageView,
                                      target: str, provider: str | dict[str, Any],
                                      credentials: dict[str, Any],
                                      parameters: Mapping[str, Any]) -> None:
    _login(credentials)
    if CLOUD.pop(provider_image.identifier_on_provider or "", None) is None:
        raise BuildError(f"fakecloud has no image {provider_image.identifier_on_provider}")
