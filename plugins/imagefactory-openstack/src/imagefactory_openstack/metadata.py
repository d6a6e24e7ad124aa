"""The Glance record of a pushed image: its name and properties.

Nova and Glance act on well-known properties: ``os_distro``/``os_version`` select guest
defaults, ``architecture`` the hosts that can run it, ``hw_disk_bus``/``hw_vif_model`` the virtio
devices a cloud image expects and ``hw_firmware_type`` BIOS or UEFI. The ``imagefactory_*`` ids
let an operator trace a Glance image back to the build that made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagefactory_core.plugin import ImageView, Template

from .content import os_family

FIRMWARES = ("bios", "uefi")
# libvirt's architecture names, which Nova's scheduler compares, where the TDL's differ.
_ARCHITECTURES = {"i386": "i686", "i486": "i686", "i586": "i686", "amd64": "x86_64",
                  "arm64": "aarch64"}


def image_name(template: Template | None, image_id: str, parameters: Mapping[str, Any]) -> str:
    """``openstack_image_name`` if asked, else the TDL's name and the provider image's id."""
    explicit = parameters["openstack_image_name"]
    if explicit:
        return str(explicit)
    return f"{template.name if template else 'imagefactory'}-{image_id}"


def image_properties(template: Template | None, target_image: ImageView, image_id: str,
                     parameters: Mapping[str, Any]) -> dict[str, str]:
    """Glance properties for the image: OS, hardware hints, imagefactory ids, then the
    request's own ``openstack_image_properties`` (which win)."""
    firmware = parameters["openstack_firmware"]
    properties = {
        "hw_disk_bus": "virtio",
        "hw_vif_model": "virtio",
        "hw_firmware_type": firmware,
        "imagefactory_provider_image_id": image_id,
        "imagefactory_target_image_id": target_image.id,
    }
    if target_image.base_image_id:
        properties["imagefactory_base_image_id"] = target_image.base_image_id
    if template is not None:
        properties["os_distro"] = os_family(template)
        properties["os_version"] = template.os.version
        properties["architecture"] = _ARCHITECTURES.get(template.os.arch, template.os.arch)
    extra = parameters["openstack_image_properties"] or {}
    properties.update({str(key): str(value) for key, value in extra.items()})
    return properties
