"""Stand-in for the vsphere plugin in the documentation's examples: the real plugin's target,
parameters, target content and target image, without its push and delete.

A vsphere target image is made by the real code (`qemu-img convert` of the stand-in base disk
to a streamOptimized VMDK, a moment for its 1 MiB), so the real ova plugin packages a real
VMDK in the examples of OVAs. Pushes and deletes need a vCenter; the examples only make
vsphere target images as the source of an OVA, so the server that runs them has no way to
reach one.
"""

from __future__ import annotations

from imagefactory_vsphere import (
    imagefactory_cloud_targets,
    imagefactory_create_target_image,
    imagefactory_parameters,
    imagefactory_target_content,
)

IMAGEFACTORY_PLUGIN_API = "1.0"
__all__ = ["imagefactory_cloud_targets", "imagefactory_create_target_image",
           "imagefactory_parameters", "imagefactory_target_content"]
