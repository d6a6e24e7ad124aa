"""A test-only cloud plugin ("fakecloud"): an in-memory cloud behind the real hook contract.

`CLOUD` holds what was "uploaded", so tests can check pushes and deletes. Credentials must be
``{"fake_credentials": {"username": …, "password": "good"}}`` (XML or JSON); anything else is
refused like a real cloud would. ``fake_gate`` (shared with FakeOS) holds pushes and deletes
(a delete runs with its push's parameters) until the test lets them go (`tests.plugins.gate`);
``fake_cloud_file`` (operator-only, set in a server's configuration) keeps `CLOUD` in a JSON
file, so the cloud outlives a server process the test kills. Written against
`imagefactory_core.plugin` only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping
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

from .gate import hold

IMAGEFACTORY_PLUGIN_API = "1.0"
CLOUD: dict[str, dict[str, Any]] = {}
_FILE_LOCK = threading.Lock()


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
        Parameter("fake_gate", "string", help="a directory where pushes and deletes wait"),
        Parameter("fake_cloud_file", "string", help="where the cloud's images are kept",
                  operator_only=True),
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
    hold(ctx, parameters["fake_gate"], "push")
    seconds = parameters["fake_push_seconds"]
    if seconds:
        ctx.run(["sleep", str(seconds)])
    digest = hashlib.sha256(target_image.body_path.read_bytes()).hexdigest()
    image_id = f"fake-{uuid.uuid4().hex[:8]}"
    with _cloud(parameters["fake_cloud_file"]) as cloud:
        cloud[image_id] = {"provider": provider, "sha256": digest, "account": account}
    ctx.progress(100, "Uploaded")
    return PushResult(image_id, account, {"sha256": digest})


@hookimpl
def imagefactory_delete_from_provider(ctx: BuildContext, provider_image: ImageView,
                                      target: str, provider: str | dict[str, Any],
                                      credentials: dict[str, Any],
                                      parameters: Mapping[str, Any]) -> None:
    _login(credentials)
    hold(ctx, parameters["fake_gate"], "delete")
    with _cloud(parameters["fake_cloud_file"]) as cloud:
        if cloud.pop(provider_image.identifier_on_provider or "", None) is None:
            raise BuildError(f"fakecloud has no image {provider_image.identifier_on_provider}")


@contextlib.contextmanager
def _cloud(path: str | None) -> Iterator[dict[str, dict[str, Any]]]:
    """The cloud's images: `CLOUD`, or kept in the JSON file `path` (read, then written
    back, under a lock: pushes run concurrently)."""
    if not path:
        yield CLOUD
        return
    with _FILE_LOCK:
        stored = Path(path)
        cloud = json.loads(stored.read_text()) if stored.exists() else {}
        yield cloud
        stored.write_text(json.dumps(cloud))
