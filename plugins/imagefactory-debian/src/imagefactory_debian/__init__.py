"""imagefactory-debian: Debian base images for Image Factory.

Registered under the entry point group ``imagefactory.plugins`` as ``debian``; the core registers
this module with pluggy, which finds the hook implementations re-exported here.
"""

from .plugin import (
    IMAGEFACTORY_PLUGIN_API,
    imagefactory_apply_target_content,
    imagefactory_create_base_image,
    imagefactory_os_targets,
    imagefactory_parameters,
)

__all__ = [
    "IMAGEFACTORY_PLUGIN_API",
    "imagefactory_apply_target_content",
    "imagefactory_create_base_image",
    "imagefactory_os_targets",
    "imagefactory_parameters",
]
