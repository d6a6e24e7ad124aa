"""What an OpenStack KVM guest needs inside the OS, handed to the OS plugin to apply.

Nova hands a guest its network, keys and user data through a config drive or the metadata
service, which cloud-init reads. Nova's console log (``openstack console log show``) is the
first serial port, so the kernel and GRUB must write to ttyS0. Instances get virtio NICs whose
names must not depend on the build machine's hardware: no persistent or "predictable" names,
every instance's first NIC is eth0. Instances are reached over SSH with the key pair named at
boot, so the image has an SSH server, without host keys: each instance makes its own on first
boot (cloud-init's ssh module) instead of sharing the build's.
"""

from __future__ import annotations

import re

from imagefactory_core.plugin import TargetContent, Template

KERNEL_ARGS = "console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0"

# cloud-init's growpart module needs the `growpart` tool, which each family packages apart.
_GROWPART_PACKAGE = {
    "debian": "cloud-guest-utils",
    "ubuntu": "cloud-guest-utils",
    "fedora": "cloud-utils-growpart",
    "rhel": "cloud-utils-growpart",
    "centos": "cloud-utils-growpart",
}

_CLOUD_CFG = b"""\
# Written by imagefactory-openstack: look only where OpenStack puts instance data.
datasource_list: [ConfigDrive, OpenStack, None]
"""

# Debian and Ubuntu's update-grub reads /etc/default/grub.d/*.cfg after /etc/default/grub.
_GRUB_CFG = f"""\
# Written by imagefactory-openstack: kernel and GRUB on the serial console, classic NIC names.
GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX {KERNEL_ARGS}"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
""".encode()

# Shell commands, run in the image after the files are written. The bootloader is whatever the
# OS plugin installed: GRUB (update-grub on Debian/Ubuntu, grubby on Fedora/RHEL) or an
# extlinux/syslinux configuration, whose kernel lines get the arguments they lack.
_EXTLINUX_CONFIGS = "/boot/extlinux/extlinux.conf /boot/syslinux/syslinux.cfg /extlinux.conf"
_COMMANDS = (
    "rm -f /etc/ssh/ssh_host_*",
    "mkdir -p /etc/systemd/network && ln -sf /dev/null /etc/systemd/network/99-default.link",
    "rm -f /etc/udev/rules.d/70-persistent-net.rules",
    "if command -v update-grub >/dev/null 2>&1; then update-grub; "
    "elif command -v grubby >/dev/null 2>&1; then "
    f"grubby --update-kernel=ALL --args='{KERNEL_ARGS}'; fi",
    f"for cfg in {_EXTLINUX_CONFIGS}; do [ -f \"$cfg\" ] || continue; "
    "sed -i -E '/^[[:space:]]*append/I{/console=ttyS0/!s/$/ console=tty0 console=ttyS0,115200n8/;"
    "/net.ifnames=0/!s/$/ net.ifnames=0/}' \"$cfg\"; done",
)


def os_family(template: Template) -> str:
    """The TDL's OS name without a version suffix, lower-cased ("RHEL-7" -> "rhel")."""
    return re.sub(r"-[\d.]+$", "", template.os.name.strip()).lower()


def target_content(template: Template) -> TargetContent:
    """The packages, files and commands an OpenStack KVM guest of `template`'s OS needs."""
    packages = ["cloud-init", "openssh-server"]
    growpart = _GROWPART_PACKAGE.get(os_family(template))
    if growpart:
        packages.append(growpart)
    files = {
        "/etc/cloud/cloud.cfg.d/90-imagefactory-openstack.cfg": _CLOUD_CFG,
        "/etc/default/grub.d/90-imagefactory-openstack.cfg": _GRUB_CFG,
    }
    return TargetContent(packages=tuple(packages), files=files, commands=_COMMANDS)
