"""What an oVirt guest needs inside the OS, handed to the OS plugin to apply.

oVirt learns a running VM's addresses, applications and logged-in users from a guest agent and
shuts it down cleanly through it. Since oVirt 4.4 that agent is qemu-guest-agent; older
engines, and guests whose OS still packages it, also use ovirt-guest-agent, which later
releases of every distribution dropped. A template is cloned into many VMs, each with new MAC
addresses: a NIC name bound to the build machine's MAC would leave every clone without its
network, so udev's persistent-net rules are removed.
"""

from __future__ import annotations

import re

from imagefactory_core.plugin import TargetContent, Template

# The OS releases whose default repositories carry ovirt-guest-agent: (family, versions). RHEL
# and CentOS had it only in extra channels (EPEL, the oVirt repositories), which a template may
# not enable: a package that cannot be found would fail the build.
_OVIRT_GUEST_AGENT = (
    ("fedora", re.compile(r"2[0-9]")),
    ("debian", re.compile(r"(9|10)(\..*)?")),
    ("ubuntu", re.compile(r"(16|18)\.04")),
)

# The OS releases without qemu-guest-agent in their repositories (it came with RHEL 6).
_NO_QEMU_GUEST_AGENT = (
    ("rhel", re.compile(r"5(\..*)?")),
    ("centos", re.compile(r"5(\..*)?")),
)

_COMMANDS = (
    "rm -f /etc/udev/rules.d/70-persistent-net.rules",
)


def os_family(template: Template) -> str:
    """The TDL's OS name without a version suffix, lower-cased ("RHEL-7" -> "rhel")."""
    return re.sub(r"-[\d.]+$", "", template.os.name.strip()).lower()


def _listed(template: Template, releases: tuple[tuple[str, re.Pattern[str]], ...]) -> bool:
    family, version = os_family(template), template.os.version.strip()
    return any(family == name and versions.fullmatch(version) for name, versions in releases)


def target_content(template: Template) -> TargetContent:
    """The packages and commands an oVirt guest of `template`'s OS needs."""
    packages = []
    if not _listed(template, _NO_QEMU_GUEST_AGENT):
        packages.append("qemu-guest-agent")
    if _listed(template, _OVIRT_GUEST_AGENT):
        packages.append("ovirt-guest-agent")
    return TargetContent(packages=tuple(packages), commands=_COMMANDS)
