"""What a vSphere guest needs inside the OS, handed to the OS plugin to apply.

open-vm-tools lets vCenter see the guest (its IP addresses, a clean shutdown, quiesced
snapshots, guest customization). Its package has the same name in every family.
"""

from __future__ import annotations

from imagefactory_core.plugin import TargetContent

PACKAGES = ("open-vm-tools",)


def target_content() -> TargetContent:
    return TargetContent(packages=PACKAGES)
