"""imagefactory-core: the public API for plugins is `hookimpl` plus the modules
`imagefactory_core.model`, `imagefactory_core.context`, `imagefactory_core.tdl` and
`imagefactory_core.errors`. Everything else is internal."""

from importlib.metadata import PackageNotFoundError, version

import pluggy

NAME = "imagefactory"
"""The pluggy project name; the entry-point group is ``imagefactory.plugins``."""

hookimpl = pluggy.HookimplMarker(NAME)

try:
    __version__ = version("imagefactory-core")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["NAME", "__version__", "hookimpl"]
