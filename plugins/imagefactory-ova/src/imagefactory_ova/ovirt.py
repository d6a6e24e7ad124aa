"""The oVirt OVA layout: what oVirt's "Export as OVA" writes and "Import from OVA" reads.

The package holds ``vm.ovf`` first, then each disk as a qcow2 file named by its image (volume)
id, without extension. The descriptor is a DMTF OVF 1.x envelope whose disk references and
``HostResource`` links use those ids, with oVirt's disk attributes (volume format and type,
interface, boot flag) on the ``Disk`` element. The operating system is given as a CIM OsType,
which oVirt maps to its own (an ``ovirt:id`` is not written: oVirt's ids depend on its
osinfo configuration). Everything oVirt adds beyond the DMTF schema is left out, so the
descriptor also validates against it; oVirt fills in its defaults for what is missing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from . import ovf
from .ovf import OVF, Writer

QCOW2_FORMAT = "http://www.gnome.org/~markmc/qcow-image-format.html"
GIB = 1024**3


@dataclass(frozen=True)
class Machine:
    """What the descriptor says. `capacity` is the virtual disk size in bytes (oVirt counts
    whole GiB), `disk_file_size` the qcow2 file's size."""

    name: str
    cim_os_type: int
    os_description: str
    disk_file_size: int
    capacity: int
    populated_size: int
    cpus: int = 1
    memory_mb: int = 2048
    vm_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    disk_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    image_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def disk_file(self) -> str:
        """The disk's name in the package: its image id."""
        return self.image_id


def descriptor(machine: Machine) -> bytes:
    """The OVF descriptor (UTF-8 XML) of `machine`."""
    w = Writer()
    references = w.element(w.envelope, OVF, "References")
    w.element(references, OVF, "File", href=machine.image_id, id=machine.image_id,
              size=str(machine.disk_file_size))
    networks = w.section(w.envelope, "NetworkSection", "List of networks")
    w.element(networks, OVF, "Network", name="ovirtmgmt")
    disks = w.section(w.envelope, "DiskSection", "List of Virtual Disks")
    w.element(disks, OVF, "Disk", **{
        "diskId": machine.disk_id, "capacity": str(-(-machine.capacity // GIB)),
        "capacityAllocationUnits": "byte * 2^30", "populatedSize": str(machine.populated_size),
        "parentRef": "", "fileRef": machine.image_id, "format": QCOW2_FORMAT,
        "volume-format": "COW", "volume-type": "Sparse", "disk-interface": "VirtIO_SCSI",
        "boot": "true", "disk-alias": f"{machine.name}_Disk1", "wipe-after-delete": "false"})

    system = w.element(w.envelope, OVF, "VirtualSystem", id=machine.vm_id)
    w.element(system, OVF, "Info", "A virtual machine")
    w.element(system, OVF, "Name", machine.name)
    os_section = w.section(system, "OperatingSystemSection", "Guest Operating System",
                           id=str(machine.cim_os_type), required="false")
    w.element(os_section, OVF, "Description", machine.os_description)
    hardware = w.section(system, "VirtualHardwareSection",
                         f"{machine.cpus} CPU, {machine.memory_mb} Memory")
    w.system(hardware, {"ElementName": "Virtual Hardware Family", "InstanceID": "0",
                        "VirtualSystemIdentifier": machine.vm_id,
                        "VirtualSystemType": "ENGINE 4.1.0.0"})
    w.item(hardware, {"Caption": f"{machine.cpus} virtual cpu",
                      "Description": "Number of virtual CPU", "ElementName": "CPU",
                      "InstanceID": "1", "ResourceType": str(ovf.PROCESSOR),
                      "VirtualQuantity": str(machine.cpus)})
    w.item(hardware, {"AllocationUnits": "byte * 2^20",
                      "Caption": f"{machine.memory_mb} MB of memory",
                      "Description": "Memory Size", "ElementName": "Memory", "InstanceID": "2",
                      "ResourceType": str(ovf.MEMORY),
                      "VirtualQuantity": str(machine.memory_mb)})
    w.item(hardware, {"Caption": "Drive 1", "Description": machine.name,
                      "ElementName": f"{machine.name}_Disk1",
                      "HostResource": f"ovf:/disk/{machine.disk_id}",
                      "InstanceID": machine.image_id, "ResourceType": str(ovf.DISK)})
    w.item(hardware, {"Caption": "Ethernet adapter on ovirtmgmt", "Connection": "ovirtmgmt",
                      "ElementName": "nic1", "InstanceID": "3", "ResourceSubType": "VirtIO",
                      "ResourceType": str(ovf.ETHERNET)})
    return w.to_bytes()
