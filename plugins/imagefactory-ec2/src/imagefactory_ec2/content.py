"""What a guest needs to work on EC2, handed to the OS plugin as `TargetContent`.

* cloud-init, limited to the EC2 datasource: it sets up the network, the SSH keys and the
  hostname from the instance metadata, and grows the root partition to the volume's size.
* A login on the serial console (ttyS0), which is what EC2's "get system log" and serial console
  show. Enabled as a systemd unit rather than through the kernel command line, so that it works
  whichever bootloader (GRUB, extlinux …) the OS plugin installed.
* An SSH server, how instances are reached with the key pair named at launch (cloud-init puts
  its public key in the default user's authorized_keys). Its host keys are removed from the
  image: every instance makes its own on first boot (cloud-init's ssh module), rather than all
  instances of the image sharing the build's.
* Classic interface names (eth0): EC2 instances change NIC models between instance types, and
  cloud-init's network configuration keys on the MAC address anyway. The udev rule file below
  has the name of the rule that applies "predictable" names and overrides it with nothing, the
  file equivalent of ``net.ifnames=0`` that needs no bootloader change.
"""

from __future__ import annotations

from imagefactory_core.plugin import TargetContent, Template

CLOUD_INIT_CONFIG = b"""\
# Written by imagefactory-ec2: on EC2, read instance data from the EC2 metadata service only.
datasource_list: [ Ec2, None ]
growpart:
  mode: auto
  devices: ['/']
"""

NO_PREDICTABLE_NAMES = b"""\
# Written by imagefactory-ec2. This file replaces udev's rule of the same name, which renames
# network interfaces to "predictable" names (ens5 ...): on EC2 they keep their kernel names (eth0).
"""

NO_BUILD_HOST_KEYS = "rm -f /etc/ssh/ssh_host_*"

ENABLE_SERIAL_GETTY = (
    "systemctl enable serial-getty@ttyS0.service || "
    "{ mkdir -p /etc/systemd/system/getty.target.wants && "
    "ln -sf /lib/systemd/system/serial-getty@.service "
    "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service; }"
)

GROWPART_PACKAGES = {
    "debian": "cloud-guest-utils",
    "ubuntu": "cloud-guest-utils",
    "fedora": "cloud-utils-growpart",
    "rhel": "cloud-utils-growpart",
    "centos": "cloud-utils-growpart",
}


def target_content(template: Template) -> TargetContent:
    growpart = GROWPART_PACKAGES.get(template.os.name.lower())
    return TargetContent(
        packages=("cloud-init", "openssh-server", *((growpart,) if growpart else ())),
        files={
            "/etc/cloud/cloud.cfg.d/90-imagefactory-ec2.cfg": CLOUD_INIT_CONFIG,
            "/etc/udev/rules.d/80-net-setup-link.rules": NO_PREDICTABLE_NAMES,
        },
        commands=(ENABLE_SERIAL_GETTY, NO_BUILD_HOST_KEYS),
    )
