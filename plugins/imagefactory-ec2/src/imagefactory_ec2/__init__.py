"""imagefactory-ec2: the ``ec2`` cloud target of Image Factory.

Registered under the entry point group ``imagefactory.plugins`` as ``ec2``; the core registers
this module with pluggy, which finds the hook implementations re-exported here.
"""

from .plugin import (
    IMAGEFACTORY_PLUGIN_API,
    imagefactory_check_provider,
    imagefactory_cloud_targets,
    imagefactory_create_target_image,
    imagefactory_delete_from_provider,
    imagefactory_parameters,
    imagefactory_push_image,
    imagefactory_target_content,
)

__all__ = [
    "IMAGEFACTORY_PLUGIN_API",
    "imagefactory_check_provider",
    "imagefactory_cloud_targets",
    "imagefactory_create_target_image",
    "imagefactory_delete_from_provider",
    "imagefactory_parameters",
    "imagefactory_push_image",
    "imagefactory_target_content",
]
