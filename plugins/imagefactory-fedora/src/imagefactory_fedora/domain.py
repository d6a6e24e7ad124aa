"""The installer guest as a libvirt domain (XML made with lxml).

Direct kernel boot of the installer's kernel and initrd (with the kickstart), the disk as
virtio, an ISO as a read-only CD-ROM on virtio-scsi, QEMU's user-mode network on a virtio
NIC, the serial console written to a file, no graphics (libvirt wants ``<graphics>``
absent rather than of type ``none``), no balloon. Every exit of the guest — power-off,
reboot, crash — ends the domain, so a rebooting installer never starts over. Names and MAC
addresses are random per build, so concurrent builds never clash; nothing listens on a port.

A guest of libvirtd (``qemu:///system``) gets its disks and its network from a build sandbox
instead (`imagefactory_fedora.relay`): the disk and the ISO as NBD exports on a Unix socket
(``storage_socket``), the NIC's frames over another (``net_socket``: QEMU's ``-netdev
stream``, which libvirt 9.0 has no element for, so it is passed with ``<qemu:commandline>``),
and QEMU runs as ``seclabel_user`` (DAC).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from lxml import etree

_MACHINES = {"x86_64": "q35", "aarch64": "virt"}
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
# A slot of the root bus (pcie.0 on q35 and virt) libvirt leaves free (it fills slots from 1
# up): the NIC of <qemu:commandline> is created before libvirt's devices, and without an
# address it would take a slot libvirt assigned to one of them.
_NIC_SLOT = "0x18"


@dataclass(frozen=True)
class Guest:
    name: str
    arch: str
    accel: str  # "kvm" or "tcg"
    memory_mib: int
    cpus: int
    kernel: str  # paths as the process running QEMU sees them
    initrd: str
    cmdline: str
    disk: str
    console: str
    iso: str | None = None
    mac: str = ""
    cpuset: str | None = None  # host CPUs, when libvirt cannot read them itself
    emulator: str | None = None
    seclabel_user: str | None = None  # qemu:///system: run QEMU as this user:group
    storage_socket: str | None = None  # disk and ISO: NBD exports "disk" and "iso" on it
    net_socket: str | None = None  # the NIC's frames over this socket (else user network)


def random_name(image_id: str) -> str:
    return f"imagefactory-{image_id[:8]}-{secrets.token_hex(4)}"


def random_mac() -> str:
    """A locally administered address in QEMU's 52:54:00 range."""
    return "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


def _sub(parent: etree._Element, tag: str, text: str | None = None,
         **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attributes.items()})
    if text is not None:
        element.text = text
    return element


def _source(disk: etree._Element, guest: Guest, path: str, export: str) -> None:
    if guest.storage_socket:
        disk.set("type", "network")
        source = _sub(disk, "source", protocol="nbd", name=export)
        _sub(source, "host", transport="unix", socket=guest.storage_socket)
    else:
        _sub(disk, "source", file=path)


def domain_xml(guest: Guest) -> str:
    domain = etree.Element("domain", type="kvm" if guest.accel == "kvm" else "qemu",
                           nsmap={"qemu": QEMU_NS} if guest.net_socket else None)
    _sub(domain, "name", guest.name)
    _sub(domain, "memory", str(guest.memory_mib), unit="MiB")
    vcpu = _sub(domain, "vcpu", str(guest.cpus), placement="static")
    if guest.cpuset:
        vcpu.set("cpuset", guest.cpuset)
    os_ = _sub(domain, "os")
    _sub(os_, "type", "hvm", arch=guest.arch, machine=_MACHINES[guest.arch])
    _sub(os_, "kernel", guest.kernel)
    _sub(os_, "initrd", guest.initrd)
    _sub(os_, "cmdline", guest.cmdline)
    if guest.arch == "x86_64":
        features = _sub(domain, "features")
        _sub(features, "acpi")
        _sub(features, "apic")
    else:
        features = _sub(domain, "features")
        _sub(features, "gic", version="3")
    # RHEL 9 needs x86-64-v2: TCG's default CPU model lacks it, its "max" model has it.
    _sub(domain, "cpu", mode="host-passthrough" if guest.accel == "kvm" else "maximum")
    _sub(domain, "clock", offset="utc")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _sub(domain, event, "destroy")
    devices = _sub(domain, "devices")
    if guest.emulator:
        _sub(devices, "emulator", guest.emulator)
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="raw", cache="unsafe")
    _source(disk, guest, guest.disk, "disk")
    _sub(disk, "target", dev="vda", bus="virtio")
    if guest.iso:
        cdrom = _sub(devices, "disk", type="file", device="cdrom")
        _sub(cdrom, "driver", name="qemu", type="raw")
        _source(cdrom, guest, guest.iso, "iso")
        _sub(cdrom, "target", dev="sda", bus="scsi")
        _sub(cdrom, "readonly")
        _sub(devices, "controller", type="scsi", model="virtio-scsi")
    mac = guest.mac or random_mac()
    if not guest.net_socket:
        interface = _sub(devices, "interface", type="user")
        _sub(interface, "mac", address=mac)
        _sub(interface, "model", type="virtio")
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=guest.console, append="on")
    _sub(serial, "target", port="0")
    _sub(devices, "memballoon", model="none")
    if guest.seclabel_user:
        seclabel = _sub(domain, "seclabel", type="static", model="dac", relabel="yes")
        _sub(seclabel, "label", guest.seclabel_user)
    if guest.net_socket:
        commandline = etree.SubElement(domain, f"{{{QEMU_NS}}}commandline")
        for value in ("-netdev", "stream,id=imagefactory-net,server=off,addr.type=unix,"
                                 f"addr.path={guest.net_socket}",
                      "-device", f"virtio-net-pci,netdev=imagefactory-net,mac={mac},"
                                 f"bus=pcie.0,addr={_NIC_SLOT}"):
            etree.SubElement(commandline, f"{{{QEMU_NS}}}arg", value=value)
    return etree.tostring(domain, pretty_print=True, encoding="unicode")
