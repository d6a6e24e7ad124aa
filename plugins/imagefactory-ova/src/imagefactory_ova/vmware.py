"""The OVF 1.0 descriptor of a vSphere virtual machine with one streamOptimized VMDK, as
VMware's own tools write it: what ``OvfManager.CreateImportSpec`` and the vSphere client's
"Deploy OVF template" read.

Hardware: one SCSI controller (LSI Logic or paravirtual) with the disk, one network adapter
(VMXNET3 or E1000) on the named network, the CPUs and memory asked for, BIOS or EFI firmware
(``vmw:Config firmware``), the virtual hardware version (``vmx-13`` is vSphere 6.5's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import archive, ovf
from .ovf import OVF, VMW, Writer, q

STREAM_OPTIMIZED = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
# The SCSI controllers: the plugin's parameter value -> the OVF ResourceSubType.
CONTROLLERS = {"lsilogic": "lsilogic", "pvscsi": "VirtualSCSI"}
NICS = {"vmxnet3": "VmxNet3", "e1000": "E1000"}
FIRMWARES = ("bios", "efi")


@dataclass(frozen=True)
class Machine:
    """What the descriptor says. `disk_file` is the VMDK's name in the package (or the name
    the import's upload will use), `disk_file_size` its size in bytes; `capacity` the virtual
    disk size and `populated_size` the bytes of data in it."""

    name: str
    guest_id: str
    cim_os_type: int
    os_description: str
    disk_file: str
    disk_file_size: int
    capacity: int
    populated_size: int
    controller: str = "lsilogic"
    nic: str = "vmxnet3"
    network: str = "VM Network"
    cpus: int = 1
    memory_mb: int = 2048
    hardware_version: str = "vmx-13"
    firmware: str = "bios"


def descriptor(machine: Machine) -> bytes:
    """The OVF descriptor (UTF-8 XML) of `machine`."""
    w = Writer("vmw")
    references = w.element(w.envelope, OVF, "References")
    w.element(references, OVF, "File", href=machine.disk_file, id="file1",
              size=str(machine.disk_file_size))
    disks = w.section(w.envelope, "DiskSection", "Virtual disk information")
    w.element(disks, OVF, "Disk", capacity=str(machine.capacity),
              capacityAllocationUnits="byte", diskId="vmdisk1", fileRef="file1",
              format=STREAM_OPTIMIZED, populatedSize=str(machine.populated_size))
    networks = w.section(w.envelope, "NetworkSection", "The list of logical networks")
    network = w.element(networks, OVF, "Network", name=machine.network)
    w.element(network, OVF, "Description", f"The {machine.network} network")

    system = w.element(w.envelope, OVF, "VirtualSystem", id=machine.name)
    w.element(system, OVF, "Info", "A virtual machine")
    w.element(system, OVF, "Name", machine.name)
    os_section = w.section(system, "OperatingSystemSection",
                           "The kind of installed guest operating system",
                           id=str(machine.cim_os_type), **{q(VMW, "osType"): machine.guest_id})
    w.element(os_section, OVF, "Description", machine.os_description)
    hardware = w.section(system, "VirtualHardwareSection", "Virtual hardware requirements")
    w.system(hardware, {"ElementName": "Virtual Hardware Family", "InstanceID": "0",
                        "VirtualSystemIdentifier": machine.name,
                        "VirtualSystemType": machine.hardware_version})
    w.item(hardware, {"AllocationUnits": "hertz * 10^6",
                      "Description": "Number of Virtual CPUs",
                      "ElementName": f"{machine.cpus} virtual CPU(s)", "InstanceID": "1",
                      "ResourceType": str(ovf.PROCESSOR), "VirtualQuantity": str(machine.cpus)})
    w.item(hardware, {"AllocationUnits": "byte * 2^20", "Description": "Memory Size",
                      "ElementName": f"{machine.memory_mb}MB of memory", "InstanceID": "2",
                      "ResourceType": str(ovf.MEMORY),
                      "VirtualQuantity": str(machine.memory_mb)})
    w.item(hardware, {"Address": "0", "Description": "SCSI Controller",
                      "ElementName": "SCSI Controller 0", "InstanceID": "3",
                      "ResourceSubType": CONTROLLERS[machine.controller],
                      "ResourceType": str(ovf.SCSI_CONTROLLER)})
    w.item(hardware, {"AddressOnParent": "0", "ElementName": "Hard Disk 1",
                      "HostResource": "ovf:/disk/vmdisk1", "InstanceID": "4", "Parent": "3",
                      "ResourceType": str(ovf.DISK)})
    w.item(hardware, {"AddressOnParent": "7", "AutomaticAllocation": "true",
                      "Connection": machine.network,
                      "Description": f"{NICS[machine.nic]} ethernet adapter on "
                                     f"\"{machine.network}\"",
                      "ElementName": "Network adapter 1", "InstanceID": "5",
                      "ResourceSubType": NICS[machine.nic],
                      "ResourceType": str(ovf.ETHERNET)})
    if machine.firmware == "efi":
        w.element(hardware, VMW, "Config", **{"required": "false", q(VMW, "key"): "firmware",
                                              q(VMW, "value"): "efi"})
    return w.to_bytes()


def write_ova(target: Path, machine: Machine, vmdk: Path,
              check: Callable[[], None]) -> dict[str, str]:
    """Write the OVA of `machine` (``<name>.ovf``, ``<name>.mf``, then the VMDK as
    ``machine.disk_file``) to `target`; return the manifest's digests by file name."""
    return archive.write_ova(target, f"{machine.name}.ovf", descriptor(machine),
                             [(machine.disk_file, vmdk)], check)
