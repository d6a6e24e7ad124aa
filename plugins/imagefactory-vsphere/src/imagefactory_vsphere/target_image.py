"""The vsphere target image: the disk (with open-vm-tools in it) as a streamOptimized VMDK, or,
with ``vsphere_package`` ova, an OVA of it (OVF 1.0 descriptor, SHA-256 manifest, the VMDK).

What the VM will be (guest id, controller, network adapter, firmware, hardware version, CPUs,
memory) is decided here and recorded in the image's properties, with the disk's sizes: the
push describes the VM from them, and so does an ova target image made from this one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildResult, Template
from imagefactory_ova import vmware
from imagefactory_ova.guest import guest

from . import vmdk


def create_target_image(ctx: BuildContext, template: Template, source_disk: Path,
                        parameters: Mapping[str, Any]) -> BuildResult:
    controller = parameters["vsphere_disk_adapter"]
    package = parameters["vsphere_package"]
    disk = ctx.body_path if package == "vmdk" else ctx.workdir / "disk.vmdk"
    ctx.progress(0, f"Converting the disk to a streamOptimized VMDK ({controller})")
    vmdk.convert(ctx, source_disk, disk, controller)
    ctx.check_cancelled()
    made = vmdk.inspect(ctx, disk)
    os_guest = guest(template.os.name, template.os.version, template.os.arch)
    properties: dict[str, Any] = {
        "disk_format": "vmdk" if package == "vmdk" else "ova", "vsphere_package": package,
        "vmdk_subformat": vmdk.SUBFORMAT, "virtual_size": made.virtual_size,
        "populated_size": made.populated_size, "vmdk_size": made.file_size,
        "guest_id": parameters["vsphere_guest_id"] or os_guest.vsphere_guest_id,
        "disk_adapter": controller, "nic": parameters["vsphere_nic"],
        "firmware": parameters["vsphere_firmware"],
        "hardware_version": parameters["vsphere_hardware_version"],
        "cpu_count": parameters["vsphere_cpu_count"],
        "memory_mb": parameters["vsphere_memory_mb"],
    }
    if package == "ova":
        ctx.progress(80, "Packaging the OVA: OVF 1.0 descriptor, SHA-256 manifest, the VMDK")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", template.name).strip("._-") or "appliance"
        machine = vmware.Machine(
            name=name, guest_id=properties["guest_id"], cim_os_type=os_guest.cim_os_type,
            os_description=os_guest.description, disk_file=f"{name}-disk1.vmdk",
            disk_file_size=made.file_size, capacity=made.virtual_size,
            populated_size=made.populated_size, controller=controller,
            nic=properties["nic"], cpus=properties["cpu_count"],
            memory_mb=properties["memory_mb"], hardware_version=properties["hardware_version"],
            firmware=properties["firmware"])
        properties["sha256"] = vmware.write_ova(ctx.body_path, machine, disk,
                                                ctx.check_cancelled)
    ctx.progress(100, f"Target image: {package}, virtual size {made.virtual_size} bytes, "
                      f"VMDK {made.file_size} bytes")
    return BuildResult(properties=properties)
