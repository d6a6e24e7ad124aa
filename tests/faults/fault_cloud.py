"""A test-only cloud plugin ("faultcloud") whose push and delete take as long as asked, for the
fault-injection suite (the service is killed while they run).

``fault_push_seconds`` / ``fault_delete_seconds`` (declared parameters, given with the push: a
provider delete runs with the push's plan) make the hook run ``sleep`` through `ctx.run`; the
command's pid goes to ``<cache>/fault-pids/<image>-push`` or ``-delete``. Only an image's first
delete is slow, so a delete repeated after a crash finishes. Any credentials with a
``password`` are accepted.
"""

from __future__ import annotations

import hashlib
import shutil
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
    Template,
    hookimpl,
)

from .fault_os import RECORD_AND_EXEC, first_attempt, pid_file

IMAGEFACTORY_PLUGIN_API = "1.0"


def _check(credentials: Mapping[str, Any]) -> None:
    if not credentials.get("fault_credentials", {}).get("password"):
        raise BuildError("faultcloud needs fault_credentials with a password")


def _wait(ctx: BuildContext, what: str, seconds: float) -> None:
    if seconds:
        ctx.run(["sh", "-c", RECORD_AND_EXEC, pid_file(ctx, what), "sleep", str(seconds)])


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [CloudTarget("faultcloud", description="Test-only cloud with slow operations")]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return [
        Parameter("fault_push_seconds", "number", 0, "how long a push takes",
                  minimum=0, maximum=600),
        Parameter("fault_delete_seconds", "number", 0, "how long a provider delete takes",
                  minimum=0, maximum=600),
    ]


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template,
                                     base_image: ImageView, source_disk: Path, target: str,
                                     parameters: Mapping[str, Any]) -> BuildResult:
    shutil.copyfile(source_disk, ctx.body_path)
    return BuildResult(properties={"disk_format": "raw"})


@hookimpl
def imagefactory_push_image(ctx: BuildContext, template: Template | None,
                            target_image: ImageView, target: str,
                            provider: str | dict[str, Any], credentials: dict[str, Any],
                            parameters: Mapping[str, Any]) -> PushResult:
    _check(credentials)
    _wait(ctx, "push", parameters["fault_push_seconds"])
    digest = hashlib.sha256(target_image.body_path.read_bytes()).hexdigest()
    return PushResult(f"fault-{digest[:12]}", "fault-account")


@hookimpl
def imagefactory_delete_from_provider(ctx: BuildContext, provider_image: ImageView,
                                      target: str, provider: str | dict[str, Any],
                                      credentials: dict[str, Any],
                                      parameters: Mapping[str, Any]) -> None:
    _check(credentials)
    if first_attempt(ctx, "delete"):
        _wait(ctx, "delete", parameters["fault_delete_seconds"])
