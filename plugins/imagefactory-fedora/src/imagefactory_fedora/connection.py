"""Which libvirt connection runs the installer guest.

``embed``: libvirt's embedded QEMU driver inside the build sandbox (no daemon; TCG, since a
sandbox has no ``/dev/kvm``). ``system``: the host's libvirtd (``qemu:///system``), whose QEMU
may use KVM but runs outside any sandbox, so the guest's network and disks are served to it
from a build sandbox (`imagefactory_fedora.guest`). ``auto`` takes ``system`` only where it
buys something, KVM, and where it can work: libvirtd answers and ``/dev/kvm`` runs stock
kernels; everywhere else the embedded driver, whose QEMU is confined the most.
"""

from __future__ import annotations

import socket

from imagefactory_core.plugin import BuildError

from . import accel

# libvirtd's socket, or the QEMU driver's own daemon (virtqemud) on modular installs
SOCKETS = ("/run/libvirt/virtqemud-sock", "/run/libvirt/libvirt-sock")
SYSTEM_URI = "qemu:///system"


def libvirtd_answers() -> bool:
    for path in SOCKETS:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            try:
                probe.connect(path)
            except OSError:
                continue
            return True
    return False


def choose(setting: str, accel_setting: str) -> str:
    """``embed`` or ``system`` for the ``libvirt_connection`` parameter's value."""
    if setting == "system":
        if not libvirtd_answers():
            raise BuildError("libvirt_connection system: libvirtd does not answer on "
                             f"{' or '.join(SOCKETS)} (start libvirtd, or use embed)")
        return "system"
    if setting == "auto" and accel_setting != "tcg" and accel.kvm_usable() \
            and libvirtd_answers():
        return "system"
    return "embed"
