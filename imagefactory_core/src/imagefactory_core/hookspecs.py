"""Every hook a plugin may implement. These docstrings are the plugin-author reference.

A plugin is a module (or object) registered under the entry-point group
``imagefactory.plugins``; it implements hooks with ``@imagefactory_core.hookimpl``.

There are two kinds of plugin, told apart by the registration hook they implement:

* an **OS plugin** implements `imagefactory_os_targets` and builds base images;
* a **cloud plugin** implements `imagefactory_cloud_targets` and builds target images, pushes
  them to providers and deletes them there.

Work hooks are called only on the plugin the core chose: the OS plugin whose `OSTarget` matches
the template's (name, version, arch), or the cloud plugin serving the requested target. A plugin
never needs to check whether a call is meant for it.

Work hooks run in a worker thread. They must honour cancellation (`ctx.check_cancelled()`
between steps; `ctx.run` does it for commands), report progress through `ctx.progress`, and raise
`imagefactory_core.errors.BuildError` with a message a user can act on when they fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy

from . import NAME
from .context import BuildContext
from .model import BuildResult, CloudTarget, ImageRecord, OSTarget, PushResult, TargetContent
from .tdl import Template

hookspec = pluggy.HookspecMarker(NAME)


# -- registration -------------------------------------------------------------------------------
@hookspec
def imagefactory_os_targets() -> list[OSTarget]:
    """Return the operating systems this OS plugin builds.

    Called once when plugins load. Each `OSTarget` names an OS (matched case-insensitively
    against ``<os><name>``), a regular expression for versions and the architectures this host
    can build. Shown by ``GET /imagefactory/plugins`` as ``targets``.

    .. versionadded:: 2.0
    """


@hookspec
def imagefactory_cloud_targets() -> list[CloudTarget]:
    """Return the cloud targets this cloud plugin serves (``ec2``, ``openstack-kvm`` …).

    Target names are unique across plugins; a clash is reported on ``/plugins`` and the later
    plugin's target is ignored.

    .. versionadded:: 2.0
    """


# -- OS plugins ---------------------------------------------------------------------------------
@hookspec(firstresult=True)
def imagefactory_create_base_image(
    ctx: BuildContext, template: Template, parameters: dict[str, Any]
) -> BuildResult | None:
    """Build a bootable disk for `template` and write it to ``ctx.body_path``.

    `template` is parsed and valid, secrets included (``template.os.rootpw``); never log them
    (``ctx.add_secret`` masks a value in the log). `parameters` are the request's parameters.
    Return a `BuildResult` whose ``icicle`` is the ICICLE XML of the installed packages.

    .. versionadded:: 2.0
    """


@hookspec(firstresult=True)
def imagefactory_apply_target_content(
    ctx: BuildContext, template: Template, content: TargetContent, disk: Path
) -> BuildResult | None:
    """Apply a cloud plugin's `TargetContent` to `disk`, in place.

    `disk` is a private copy of a base image this OS plugin built from `template`. Install the
    packages, write the files, then run the commands, as for a TDL. Return a `BuildResult` with
    an updated ICICLE when the package set changed, else None.

    .. versionadded:: 2.0
    """


# -- cloud plugins ------------------------------------------------------------------------------
@hookspec(firstresult=True)
def imagefactory_target_content(
    target: str, template: Template, parameters: dict[str, Any]
) -> TargetContent | None:
    """Return what the OS must contain for `target` (cloud-init, console settings …).

    The core asks the OS plugin that built the base image to apply it to a copy of the disk
    before `imagefactory_create_target_image` runs (the original's ``add_cloud_plugin_content``).
    Return None when the target needs nothing.

    .. versionadded:: 2.0
    """


@hookspec(firstresult=True)
def imagefactory_create_target_image(
    ctx: BuildContext,
    template: Template,
    base_image: ImageRecord,
    source_disk: Path,
    target: str,
    parameters: dict[str, Any],
) -> BuildResult | None:
    """Turn `source_disk` (raw) into the target image at ``ctx.body_path``.

    `source_disk` is the base image's disk with the target content applied; it may be the base
    image's own body, so treat it as read-only. Convert it to the format the cloud wants
    (`parameters` may choose) and return a `BuildResult` whose ``properties`` record what was
    made (for example ``{"disk_format": "qcow2"}``).

    .. versionadded:: 2.0
    """


@hookspec(firstresult=True)
def imagefactory_push_image(
    ctx: BuildContext,
    template: Template | None,
    target_image: ImageRecord,
    target: str,
    provider: str | dict[str, Any],
    credentials: dict[str, Any],
    parameters: dict[str, Any],
) -> PushResult:
    """Upload `target_image` (its body is ``target_image.body_path``) into a provider account.

    `provider` is the request's provider: a name (``ec2-us-east-1``) or a parsed JSON object.
    `credentials` is the parsed credentials document: XML ``<provider_credentials>`` becomes
    ``{"ec2_credentials": {"access_key": …}}``; JSON arrives as given. Credentials live only for
    this call: never store or log them. On failure or cancellation, remove what was created on
    the cloud before raising. Return the provider's identifier for the image.

    .. versionadded:: 2.0
    """


@hookspec(firstresult=True)
def imagefactory_delete_from_provider(
    ctx: BuildContext,
    provider_image: ImageRecord,
    target: str,
    provider: str | dict[str, Any],
    credentials: dict[str, Any],
    parameters: dict[str, Any],
) -> None:
    """Delete `provider_image` (``provider_image.identifier_on_provider``) from the provider,
    with everything the push created there (snapshots, staged objects).

    Raise `BuildError` when the cloud refuses; the image then ends DELETEFAILED with the reason.

    .. versionadded:: 2.0
    """
