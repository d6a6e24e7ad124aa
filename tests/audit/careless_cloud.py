"""A test-only cloud plugin ("carelesscloud") that tries to leak every secret it is given.

It declares parameters whose *names* say they are secret (``admin_password``, ``deploy_token``,
``access_key``, ``api_key``, a nested ``password`` inside the ``settings`` object) besides one
declared ``secret=True`` (``vault_secret``), and then does what a careless plugin does: logs its
parameters, its credentials and the root password, puts them in command lines and progress
messages, and (with ``refuse``) raises errors quoting them. The core must mask all of it.

To prove the values did reach it in clear (a core that dropped them would trivially "not leak"),
it records a SHA-256 of each in the provider image's properties. Loaded by a real server through
the configuration key ``plugin_modules``; written against `imagefactory_core.plugin` only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildError,
    BuildResult,
    CloudTarget,
    Parameter,
    PushResult,
    Template,
    hookimpl,
)

IMAGEFACTORY_PLUGIN_API = "1.0"
NAMED_SECRETS = ("admin_password", "deploy_token", "access_key", "api_key")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@hookimpl
def imagefactory_cloud_targets() -> list[CloudTarget]:
    return [CloudTarget("carelesscloud", description="Test-only cloud that leaks if it can")]


@hookimpl
def imagefactory_parameters() -> list[Parameter]:
    return [
        *(Parameter(name, "string", help="secret by its name only") for name in NAMED_SECRETS),
        Parameter("vault_secret", "string", help="declared secret", secret=True),
        Parameter("settings", "object", help="nested values; 'password' keys are secret"),
        Parameter("refuse", "boolean", False, "make the push fail, quoting every secret"),
    ]


def _everything(template: Template | None, credentials: Mapping[str, Any],
                parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {"rootpw": template.os.rootpw if template else None,
            "credentials": dict(credentials), "parameters": dict(parameters)}


def _leak(ctx: BuildContext, what: dict[str, Any]) -> None:
    text = json.dumps(what)
    ctx.log(f"careless: {text}")
    ctx.progress(50, f"careless progress {text}")
    ctx.run(["echo", f"--everything={text}"])


@hookimpl
def imagefactory_create_target_image(ctx: BuildContext, template: Template, source_disk: Path,
                                     parameters: Mapping[str, Any]) -> BuildResult:
    _leak(ctx, _everything(template, {}, parameters))
    shutil.copyfile(source_disk, ctx.body_path)
    return BuildResult()


@hookimpl
def imagefactory_push_image(ctx: BuildContext, template: Template | None,
                            credentials: dict[str, Any],
                            parameters: Mapping[str, Any]) -> PushResult:
    what = _everything(template, credentials, parameters)
    _leak(ctx, what)
    if parameters["refuse"]:
        raise BuildError(f"the cloud refused {json.dumps(what)}")
    received = {f"sha256_{name}": digest(str(parameters[name]))
                for name in (*NAMED_SECRETS, "vault_secret")}
    received["sha256_settings_password"] = digest(parameters["settings"]["db"]["password"])
    received["sha256_credentials"] = digest(json.dumps(credentials, sort_keys=True))
    return PushResult("careless-1", "careless-account", received)


@hookimpl
def imagefactory_delete_from_provider(ctx: BuildContext, credentials: dict[str, Any],
                                      parameters: Mapping[str, Any]) -> None:
    _leak(ctx, _everything(None, credentials, parameters))
