"""Which operating system an appliance holds, in the identifiers descriptors use: the CIM
``OsType`` of the OVF ``OperatingSystemSection`` (``ovf:id``, read by oVirt and most
importers) and the vSphere guest id (``vmw:osType``, the VM's ``guestId``).

Only what the TDL says is used (name, version, architecture). Unknown systems are "Linux
64-bit" / ``otherLinux64Guest`` (32-bit: "Linux" / ``otherLinuxGuest``); an operator or
client who knows better names the guest id with a parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# CIM_OperatingSystem.OsType values (DMTF CIM schema).
_CIM = {("debian", True): 96, ("debian", False): 95, ("ubuntu", True): 94,
        ("ubuntu", False): 93, ("rhel", True): 80, ("rhel", False): 79,
        ("centos", True): 107, ("centos", False): 106, ("sles", True): 85,
        ("sles", False): 84, ("opensuse", True): 83, ("opensuse", False): 82}
_CIM_LINUX = {True: 101, False: 36}
_64_BIT = ("x86_64", "amd64", "aarch64", "arm64", "ppc64le", "s390x")
_FAMILIES = {"rhel": "rhel", "redhat": "rhel", "centos": "centos", "centos-stream": "centos",
             "rocky": "rhel", "almalinux": "rhel", "alma": "rhel", "debian": "debian",
             "ubuntu": "ubuntu", "fedora": "fedora", "sles": "sles", "opensuse": "opensuse"}
# Families whose vSphere guest ids carry the major version (debian12_64Guest). A vCenter
# older than the OS may not know the id (debian12_64Guest needs vSphere 8.0): the parameter
# naming the guest id is there for that.
_VERSIONED = ("debian", "rhel", "centos")


@dataclass(frozen=True)
class Guest:
    cim_os_type: int
    vsphere_guest_id: str
    description: str


def family(os_name: str) -> str:
    """The TDL's OS name without a version suffix, lower-cased ("RHEL-7" -> "rhel")."""
    name = re.sub(r"-[\d.]+$", "", os_name.strip()).lower()
    return _FAMILIES.get(name, name)


def guest(os_name: str, version: str, arch: str) -> Guest:
    """The identifiers of the TDL's operating system (`os_name` as in ``<os><name>``)."""
    wide = arch in _64_BIT
    kind = family(os_name)
    major_match = re.match(r"\d+", version.strip())
    major = int(major_match.group()) if major_match else 0
    suffix = "_64Guest" if wide else "Guest"
    if kind in _VERSIONED and major:
        guest_id = f"{kind}{major}{suffix}"
    elif kind in ("ubuntu", "fedora", "sles", "opensuse"):
        guest_id = f"{kind}{'64' if wide else ''}Guest"
    else:
        guest_id = f"otherLinux{'64' if wide else ''}Guest"
    bits = "64-bit" if wide else "32-bit"
    return Guest(cim_os_type=_CIM.get((kind, wide), _CIM_LINUX[wide]),
                 vsphere_guest_id=guest_id,
                 description=f"{os_name.strip()} {version.strip()} ({bits})")
