"""imagefactory-core. Plugins use `imagefactory_core.plugin` (the plugin API) and nothing else;
every other module is internal."""

from __future__ import annotations

from typing import Any

NAME = "imagefactory"
"""The pluggy project name; the entry-point group is ``imagefactory.plugins``."""

__all__ = ["NAME", "__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    """`hookimpl` and `__version__`, made on first use: every build sandbox's launcher imports
    this package, and pluggy and importlib.metadata would cost it tens of milliseconds."""
    if name == "hookimpl":
        import pluggy

        value: Any = pluggy.HookimplMarker(NAME)
    elif name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("imagefactory-core")
        except PackageNotFoundError:  # running from a source tree that was never installed
            value = "0+unknown"
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
