"""The ova target: an OVA of a vsphere or rhevm target image (the original's OVA plugin).

The source target image's body is packaged as it is where the layout allows: a vsphere
image's streamOptimized VMDK is copied into the archive, an rhevm image's qcow2 too (a raw
one is converted to qcow2 first). What the descriptor says about the hardware comes from the
source image's recorded properties (its plugin's choices), the parameters and the template.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildError, BuildResult, ImageView, Template

from . import archive, disk, ovirt, vmware
from .guest import Guest, guest
from .settings import LAYOUTS

DEFAULT_CPUS = 1
DEFAULT_MEMORY_MB = 2048


@dataclass(frozen=True)
class Appliance:
    """What both layouts describe the same way."""

    name: str
    guest: Guest
    cpus: int
    memory_mb: int


def make_ova(ctx: BuildContext, template: Template, source: ImageView, body: Path,
             parameters: Mapping[str, Any]) -> BuildResult:
    """Write the OVA of target image `source` (its body `body`) to ``ctx.body_path``."""
    layout = parameters["ova_format"] or source.target
    if layout not in LAYOUTS:
        raise BuildError(f"an OVA is made from a vsphere or rhevm target image, not from "
                         f"{source.target!r}")
    if layout != source.target:
        raise BuildError(f"ova_format {layout} packages a {layout} target image; target image "
                         f"{source.id} is {source.target} (it holds that cloud's guest "
                         f"tools): make a {layout} target image first")
    recorded = source.properties
    appliance = Appliance(
        name=parameters["ovf_name"] or _file_name(template.name),
        guest=guest(template.os.name, template.os.version, template.os.arch),
        cpus=parameters["ovf_cpu_count"] or int(recorded.get("cpu_count") or DEFAULT_CPUS),
        memory_mb=(parameters["ovf_memory_mb"]
                   or int(recorded.get("memory_mb") or DEFAULT_MEMORY_MB)))
    make = _vsphere if layout == "vsphere" else _ovirt
    digests = make(ctx, source, body, appliance)
    size = ctx.body_path.stat().st_size
    ctx.progress(100, f"The OVA ({layout} layout) is {size} bytes: {', '.join(digests)}")
    return BuildResult(properties={"disk_format": "ova", "ova_format": layout,
                                   "ovf_name": appliance.name, "sha256": digests,
                                   "source_target": source.target})


def _file_name(name: str) -> str:
    """A template name made fit for a file name in the archive."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return cleaned[:80] or "appliance"


def _vsphere(ctx: BuildContext, source: ImageView, body: Path,
             appliance: Appliance) -> dict[str, str]:
    recorded = source.properties
    if recorded.get("vsphere_package") == "ova":
        raise BuildError(f"target image {source.id} is an OVA already (vsphere_package ova): "
                         "download it, or make the OVA from a vsphere target image of the "
                         "default package")
    ctx.progress(0, f"Reading the VMDK of target image {source.id}")
    details = disk.info(ctx, body, "vmdk")
    if disk.vmdk_subformat(details) != "streamOptimized":
        raise BuildError(f"target image {source.id} is a {disk.vmdk_subformat(details)} VMDK;"
                         " an OVA needs a streamOptimized one")
    machine = vmware.Machine(
        name=appliance.name,
        guest_id=str(recorded.get("guest_id") or appliance.guest.vsphere_guest_id),
        cim_os_type=appliance.guest.cim_os_type, os_description=appliance.guest.description,
        disk_file=f"{appliance.name}-disk1.vmdk", disk_file_size=body.stat().st_size,
        capacity=int(details["virtual-size"]),
        populated_size=disk.populated_size(ctx, body, "vmdk"),
        controller=str(recorded.get("disk_adapter") or "lsilogic"),
        nic=str(recorded.get("nic") or "vmxnet3"), cpus=appliance.cpus,
        memory_mb=appliance.memory_mb,
        hardware_version=str(recorded.get("hardware_version") or "vmx-13"),
        firmware=str(recorded.get("firmware") or "bios"))
    ctx.progress(10, "Writing the OVA: OVF 1.0 descriptor, manifest, streamOptimized VMDK")
    return vmware.write_ova(ctx.body_path, machine, body, ctx.check_cancelled)


def _ovirt(ctx: BuildContext, source: ImageView, body: Path,
           appliance: Appliance) -> dict[str, str]:
    fmt = str(source.properties.get("disk_format") or "raw")
    if fmt not in ("raw", "qcow2"):
        raise BuildError(f"target image {source.id} is {fmt}; the oVirt layout takes a raw "
                         "or qcow2 disk")
    details = disk.info(ctx, body, fmt)
    qcow2 = body
    if fmt == "raw":
        ctx.progress(0, f"Converting the raw disk of target image {source.id} to qcow2")
        qcow2 = ctx.workdir / "disk.qcow2"
        disk.to_qcow2(ctx, body, fmt, qcow2)
    machine = ovirt.Machine(
        name=appliance.name, cim_os_type=appliance.guest.cim_os_type,
        os_description=appliance.guest.description, disk_file_size=qcow2.stat().st_size,
        capacity=int(details["virtual-size"]),
        populated_size=disk.populated_size(ctx, qcow2, "qcow2"), cpus=appliance.cpus,
        memory_mb=appliance.memory_mb)
    ctx.progress(40, "Writing the OVA: oVirt's vm.ovf, manifest, qcow2 disk")
    return archive.write_ova(ctx.body_path, "vm.ovf", ovirt.descriptor(machine),
                             [(machine.disk_file, qcow2)], ctx.check_cancelled)
