"""Which accelerator the installer guest gets.

KVM only where it can run stock kernels: some hosts expose a ``/dev/kvm`` backed by a
software-nested hypervisor (the ``kvm_pvm`` module) under which distribution kernels crash or
hang; there, as without ``/dev/kvm``, the guest runs under TCG (emulation). The ``accel``
parameter overrides the detection. A guest of the embedded driver runs in the build sandbox,
whose ``/dev`` has no ``/dev/kvm``: it always runs under TCG.
"""

from __future__ import annotations

import os
from pathlib import Path

from imagefactory_core.plugin import BuildError


def kvm_usable() -> bool:
    return (not Path("/sys/module/kvm_pvm").exists()
            and os.access("/dev/kvm", os.R_OK | os.W_OK))


def choose(setting: str, connection: str) -> str:
    """``kvm`` or ``tcg`` for the `accel` parameter's value on `connection`."""
    if connection == "embed":
        if setting == "kvm":
            raise BuildError("accel kvm: the embedded driver's guest runs in the build "
                             "sandbox, which has no /dev/kvm (use accel auto or tcg)")
        return "tcg"
    if setting == "auto":
        return "kvm" if kvm_usable() else "tcg"
    return setting
