"""The plugin API: everything an OS or cloud plugin may use, in one module.

A plugin imports from here only (and from `imagefactory_core.testing` in its tests); every other
module of imagefactory-core is internal and may change in any release. This module changes
only with the plugin API version, `API_VERSION`:

* a minor version (1.1) only adds: a plugin written for 1.0 runs on 1.1;
* a major version (2.0) may break: the core refuses a plugin that needs another major version,
  or a newer minor version than it provides, and lists it on ``/plugins`` with the reason.

A plugin says which version it needs with a module attribute::

    from imagefactory_core.plugin import hookimpl, CloudTarget, Parameter

    IMAGEFACTORY_PLUGIN_API = "1.0"

The hooks, their arguments and what they return are described in `imagefactory_core.hookspecs`
(rendered as docs/hooks.md).
"""

from __future__ import annotations

from . import hookimpl
from .context import BuildContext
from .errors import BuildCancelled, BuildError, CommandFailed, TemplateError
from .model import (
    BuildResult,
    CloudTarget,
    ImageKind,
    ImageView,
    OSTarget,
    PushResult,
    TargetContent,
)
from .outbound import OutboundPolicy, OutboundRefused
from .parameters import Parameter, ParameterError
from .sandbox.runner import Sandbox
from .tdl import (
    Command,
    File,
    InstallExtra,
    OSSpec,
    Package,
    Repository,
    Template,
    build_icicle,
    parse_icicle,
    parse_template,
)

API_VERSION = "1.0"
"""The plugin API version this imagefactory-core provides."""

API_ATTRIBUTE = "IMAGEFACTORY_PLUGIN_API"
"""The module attribute in which a plugin declares the API version it needs."""

__all__ = [
    "API_ATTRIBUTE",
    "API_VERSION",
    "BuildCancelled",
    "BuildContext",
    "BuildError",
    "BuildResult",
    "CloudTarget",
    "Command",
    "CommandFailed",
    "File",
    "ImageKind",
    "ImageView",
    "InstallExtra",
    "OSSpec",
    "OSTarget",
    "OutboundPolicy",
    "OutboundRefused",
    "Package",
    "Parameter",
    "ParameterError",
    "PushResult",
    "Repository",
    "Sandbox",
    "TargetContent",
    "Template",
    "TemplateError",
    "build_icicle",
    "hookimpl",
    "parse_icicle",
    "parse_template",
]
