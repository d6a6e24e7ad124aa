"""Every hook a plugin may implement. These docstrings are the plugin-author reference.

A plugin is a module (or object) registered under the entry-point group
``imagefactory.plugins``. It imports only `imagefactory_core.plugin`, declares the plugin API
version it needs (``IMAGEFACTORY_PLUGIN_API = "1.0"``) and implements hooks with
``@hookimpl``.

There are two kinds of plugin, told apart by the registration hook they implement:

* an **OS plugin** implements `imagefactory_os_targets` and builds base images;
* a **cloud plugin** implements `imagefactory_cloud_targets` and builds target images, pushes
  them to providers and deletes them there.

Either kind declares its settings with `imagefactory_parameters`. The core checks requests and
the configuration file against those declarations and hands every work hook its resolved,
typed values as ``parameters``: the request's, else the plugin's section of the configuration
file (``plugins.<id>``), else the declared default. Every declared name is present.

Work hooks are called only on the plugin the core chose when the request was submitted: the OS
plugin whose `OSTarget` matches the template's (name, version, arch), or the cloud plugin
serving the requested target. A plugin never needs to check whether a call is meant for it.

Work hooks run in a worker thread, each with a `BuildContext` bound to the plugin. They must
honour cancellation (`ctx.check_cancelled()` between steps; `ctx.run` does it for commands),
report progress through `ctx.progress`, and raise `BuildError` with a message a user can act on
when they fail.

Versions below are plugin API versions. Before 1.0, imagefactory-core 2.0 had an unversioned
API; a ``versionchanged:: 1.0`` note says what changed from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pluggy

from . import NAME
from .context import BuildContext
from .model import BuildResult, CloudTarget, ImageView, OSTarget, PushResult, TargetContent
from .outbound import OutboundPolicy
from .parameters import Parameter
from .tdl import Template

hookspec = pluggy.HookspecMarker(NAME)


# -- registration -------------------------------------------------------------------------------
@hookspec
def imagefactory_os_targets() -> list[OSTarget]:
    """Return the operating systems this OS plugin builds.

    Called once when plugins load. Each `OSTarget` names an OS (matched case-insensitively
    against ``<os><name>``), a regular expression for versions and the architectures this host
    can build. Shown by ``GET /imagefactory/plugins`` as ``targets``.

    .. versionadded:: 1.0
    """


@hookspec
def imagefactory_cloud_targets() -> list[CloudTarget]:
    """Return the cloud targets this cloud plugin serves (``ec2``, ``openstack-kvm`` …).

    Target names are unique across plugins; a clash is reported on ``/plugins`` and the later
    plugin's target is ignored. A target made from other targets' images (an OVA of a
    ``vsphere`` target image) names them in ``CloudTarget.from_targets``.

    .. versionadded:: 1.0
    """


@hookspec
def imagefactory_parameters() -> list[Parameter]:
    """Declare the parameters this plugin takes (`Parameter`: name, type, default, allowed
    values or range, help, ``secret``, ``operator_only``).

    Called once when plugins load. Requests may only name parameters that a plugin they call
    declares (or the core's own ``callbacks``); a wrong type or value, an unknown name, or an
    ``operator_only`` parameter from a client the operator has not allowed is refused with a
    400 at POST time. The plugin's section of the configuration file may set any of them
    (checked at start-up). Shown by ``GET /imagefactory/plugins/<id>``, the OpenAPI document
    and the plugin's generated documentation. A parameter declared by several plugins of one
    request reaches each of them.

    Secret parameters reach the plugin in clear; the core masks their values in the build log
    and never stores or shows them.

    .. versionadded:: 1.0
    """


# -- OS plugins ---------------------------------------------------------------------------------
@hookspec(firstresult=True)
def imagefactory_create_base_image(
    ctx: BuildContext, template: Template, parameters: Mapping[str, Any]
) -> BuildResult | None:
    """Build a bootable disk for `template` and write it to ``ctx.body_path``.

    `template` is parsed and valid, secrets included (``template.os.rootpw``); never log them
    (the core masks the root password; ``ctx.add_secret`` masks any other value). `parameters`
    are this plugin's resolved values. Return a `BuildResult` whose ``icicle`` is the ICICLE
    XML of the installed packages.

    .. versionadded:: 1.0
    .. versionchanged:: 1.0
       ``parameters`` are the plugin's resolved, typed values (before: the request's stored
       parameters, with secret-looking values masked).
    """


@hookspec(firstresult=True)
def imagefactory_apply_target_content(
    ctx: BuildContext,
    template: Template,
    content: TargetContent,
    disk: Path,
    parameters: Mapping[str, Any],
) -> BuildResult | None:
    """Apply a cloud plugin's `TargetContent` to `disk`, in place.

    `disk` is a private copy of a base image this OS plugin built from `template`. Install the
    packages, write the files, then run the commands, as for a TDL. `parameters` are this OS
    plugin's resolved values for the target image's request (a per-request mirror or proxy
    applies here too). Return a `BuildResult` with an updated ICICLE when the package set
    changed, else None.

    .. versionadded:: 1.0
    .. versionchanged:: 1.0
       new argument ``parameters``.
    """


# -- cloud plugins ------------------------------------------------------------------------------
@hookspec(firstresult=True)
def imagefactory_target_content(
    target: str, template: Template, parameters: Mapping[str, Any]
) -> TargetContent | None:
    """Return what the OS must contain for `target` (cloud-init, console settings …).

    The core asks the OS plugin that built the base image to apply it to a copy of the disk
    before `imagefactory_create_target_image` runs (the original's ``add_cloud_plugin_content``).
    `parameters` are this cloud plugin's resolved values. Return None when the target needs
    nothing.

    .. versionadded:: 1.0
    .. versionchanged:: 1.0
       ``parameters`` are the plugin's resolved, typed values.
    """


@hookspec(firstresult=True)
def imagefactory_create_target_image(
    ctx: BuildContext,
    template: Template,
    base_image: ImageView,
    source_disk: Path,
    target: str,
    parameters: Mapping[str, Any],
) -> BuildResult | None:
    """Turn `source_disk` (raw) into the target image at ``ctx.body_path``.

    `source_disk` is the base image's disk with the target content applied; it may be the base
    image's own body, so treat it as read-only. Convert it to the format the cloud wants
    (`parameters`, this plugin's resolved values, may choose) and return a `BuildResult` whose
    ``properties`` record what was made (for example ``{"disk_format": "qcow2"}``).

    For a target made from another target's image (``CloudTarget.from_targets``),
    `base_image` is that target image (``kind`` TargetImage; its ``target`` and
    ``properties`` say what it is) and `source_disk` its body as its plugin made it (a VMDK, a
    qcow2 …), read-only; no target content is applied.

    .. versionadded:: 1.0
    .. versionchanged:: 1.0
       ``base_image`` is an `ImageView`; ``parameters`` are the plugin's resolved values.
    """


@hookspec(firstresult=True)
def imagefactory_check_provider(
    target: str,
    provider: str | dict[str, Any],
    credentials: dict[str, Any],
    parameters: Mapping[str, Any],
    outbound: OutboundPolicy,
) -> None:
    """Check a push's or a provider DELETE's `provider` and `credentials` before anything is
    queued; raise `BuildError` saying what is wrong and the core answers 400 with its message.

    Refuse here what a request may not ask for: an endpoint the operator has not listed in
    the plugin's configuration (``outbound.endpoint_refusal``), a literal address the
    operator's outbound policy refuses, settings only the operator may choose (TLS
    verification, which named account to use). `parameters` are this plugin's resolved values
    for the request (for a DELETE: the push's). Do not connect anywhere: the client is waiting,
    and names may resolve differently when the work runs (connections then go through
    ``ctx.outbound``). Optional: without it, problems show when the work runs.

    .. versionadded:: 1.0
    """


@hookspec(firstresult=True)
def imagefactory_push_image(
    ctx: BuildContext,
    template: Template | None,
    target_image: ImageView,
    target: str,
    provider: str | dict[str, Any],
    credentials: dict[str, Any],
    parameters: Mapping[str, Any],
) -> PushResult:
    """Upload `target_image` (its body is ``target_image.body_path``) into a provider account.

    `provider` is the request's provider: a name (``ec2-us-east-1``) or a parsed JSON object.
    `credentials` is the parsed credentials document: XML ``<provider_credentials>`` becomes
    ``{"ec2_credentials": {"access_key": …}}``; JSON arrives as given. Credentials live only for
    this call: never store or log them (the core masks their values in the log). `parameters`
    are this plugin's resolved values. On failure or cancellation, remove what was created on
    the cloud before raising. Return the provider's identifier for the image.

    .. versionadded:: 1.0
    .. versionchanged:: 1.0
       ``target_image`` is an `ImageView`; ``parameters`` are the plugin's resolved values.
    """


@hookspec(firstresult=True)
def imagefactory_delete_from_provider(
    ctx: BuildContext,
    provider_image: ImageView,
    target: str,
    provider: str | dict[str, Any],
    credentials: dict[str, Any],
    parameters: Mapping[str, Any],
) -> None:
    """Delete `provider_image` (``provider_image.identifier_on_provider``) from the provider,
    with everything the push created there (snapshots, staged objects).

    `parameters` are this plugin's values as resolved for the push. Raise `BuildError` when
    the cloud refuses; the image then ends DELETEFAILED with the reason.

    .. versionadded:: 1.0
    .. versionchanged:: 1.0
       ``provider_image`` is an `ImageView`; ``parameters`` are the plugin's resolved
       values.
    """
