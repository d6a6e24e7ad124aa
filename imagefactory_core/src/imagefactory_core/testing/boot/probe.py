"""The first-boot probe: user-data that prints what the instance got from its cloud on the
serial console, and the parsers that read it back.

The user-data is a shell script (cloud-init runs it once per instance, in its final stage):

1. Facts, one ``IMAGEFACTORY-FACT <key> <value>`` line each, between ``IMAGEFACTORY-FACTS-BEGIN``
   and ``-END``: instance id, host name, cloud-init's cloud id and data source (and what
   ds-identify chose), every
   authorized key with its owner, the root file system's device, type and size and its disk's
   size, the IPv4 addresses, links and default route, the kernel command line, the serial
   getty's state.
2. A per-boot script for cloud-init (``/var/lib/cloud/scripts/per-boot``), which runs on every
   later boot and prints ``IMAGEFACTORY-PER-BOOT`` with the instance id cloud-init has then and
   how many instances it has seen: after a reboot, the same id and one instance.
3. Once the boot is complete (``systemctl is-system-running --wait``), a report between
   ``IMAGEFACTORY-REPORT-BEGIN`` and ``-END``: ``systemd-analyze time``, ``blame``,
   ``critical-chain`` (of the default target and of cloud-final) and cloud-init's own
   ``analyze blame``; then, if asked, a clean reboot (``systemctl reboot``).

The script builds its markers from parts, so that a console showing the script itself cannot
be mistaken for its output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

MARK = "IMAGEFACTORY"
FACTS_BEGIN = f"{MARK}-FACTS-BEGIN"
FACTS_END = f"{MARK}-FACTS-END"
REPORT_BEGIN = f"{MARK}-REPORT-BEGIN"
REPORT_END = f"{MARK}-REPORT-END"
PER_BOOT = f"{MARK}-PER-BOOT"
SERIAL = "/dev/ttyS0"

_SCRIPT = r"""#!/bin/sh
# imagefactory's first-boot probe: what this instance got from its cloud, on the serial console.
m=IMAGEFACTORY
out=@SERIAL@
fact() { printf '%s-FACT %s %s\n' "$m" "$1" "$2"; }
{
echo "$m-FACTS-BEGIN"
fact instance-id "$(cat /var/lib/cloud/data/instance-id)"
fact hostname "$(hostname)"
fact cloud-id "$(cat /run/cloud-init/cloud-id)"
fact datasource "$(grep -o '"subplatform": "[^"]*"' /run/cloud-init/instance-data.json \
                   | head -n 1 | cut -d '"' -f 4)"
fact ds-identify "$(grep -v '^#' /run/cloud-init/cloud.cfg | tr '\n' ' ')"
for keys in /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys; do
    [ -f "$keys" ] || continue
    owner=$(stat -c %U "$keys")
    while IFS= read -r key; do fact authorized-key "$owner $key"; done < "$keys"
done
root=$(findmnt -n -o SOURCE /)
fact root-device "$root"
fact root-fstype "$(findmnt -n -o FSTYPE /)"
fact root-size "$(df -B1 --output=size / | tail -n 1 | tr -d ' ')"
fact disk-size "$(lsblk -b -n -d -o SIZE "/dev/$(lsblk -n -o PKNAME "$root" | head -n 1)")"
ip -o -4 addr show | while IFS= read -r line; do fact address "$line"; done
ip -o link show | while IFS= read -r line; do fact link "$line"; done
fact default-route "$(ip -4 route show default)"
fact cmdline "$(cat /proc/cmdline)"
fact getty "$(systemctl is-active serial-getty@ttyS0.service)"
fact sshd "$(systemctl is-active ssh.service sshd.service 2>/dev/null | grep -m 1 -x active)"
for key in /etc/ssh/ssh_host_*_key.pub; do
    [ -f "$key" ] && fact ssh-host-key "$(stat -c %Y "$key") $(cut -d ' ' -f 1 "$key")"
done
fact boot-time "$(date -d "$(uptime -s)" +%s)"
echo "$m-FACTS-END"
} > "$out" 2>&1

mkdir -p /var/lib/cloud/scripts/per-boot
cat > /var/lib/cloud/scripts/per-boot/imagefactory-probe <<EOF
#!/bin/sh
echo "$m-PER-BOOT instance-id=\$(cat /var/lib/cloud/data/instance-id)" \
     "instances=\$(ls /var/lib/cloud/instances | wc -l)" > $out
EOF
chmod 755 /var/lib/cloud/scripts/per-boot/imagefactory-probe

cat > /run/imagefactory-report <<EOF
#!/bin/sh
systemctl is-system-running --wait > /dev/null 2>&1
{
echo "$m-REPORT-BEGIN"
systemd-analyze time
systemd-analyze blame --no-pager | head -n 15
systemd-analyze critical-chain --no-pager
systemd-analyze critical-chain --no-pager cloud-final.service
cloud-init analyze blame 2>&1 | head -n 25
echo "$m-REPORT-END"
} > $out 2>&1
@THEN@
EOF
systemd-run --quiet --no-block --unit=imagefactory-report /bin/sh /run/imagefactory-report
"""


def user_data(reboot: bool, serial: str = SERIAL) -> bytes:
    """The probe script; with `reboot`, the instance reboots once the report is printed."""
    return (_SCRIPT.replace("@SERIAL@", serial)
            .replace("@THEN@", "systemctl reboot" if reboot else "")).encode()


@dataclass(frozen=True)
class Address:
    """One IPv4 address as ``ip -o -4 addr`` shows it; `dynamic` when it is leased (DHCP)."""

    interface: str
    cidr: str
    dynamic: bool

    @property
    def ip(self) -> str:
        return self.cidr.split("/")[0]


_FACT = re.compile(rf"{MARK}-FACT (\S+) ?(.*)")
_ADDRESS = re.compile(r"^\d+: (\S+)\s+inet (\S+) (.*)")


@dataclass(frozen=True)
class GuestFacts:
    """What the probe printed, key → values in order (some keys repeat)."""

    values: MappingProxyType[str, tuple[str, ...]]

    @classmethod
    def parse(cls, console: str) -> GuestFacts | None:
        """The facts of the first probe run on `console`, or None when it did not print them."""
        begin = console.find(FACTS_BEGIN)
        end = console.find(FACTS_END, begin)
        if begin < 0 or end < 0:
            return None
        values: dict[str, list[str]] = {}
        for line in console[begin:end].splitlines():
            match = _FACT.search(line)
            if match:
                values.setdefault(match[1], []).append(match[2].strip())
        return cls(MappingProxyType({k: tuple(v) for k, v in values.items()}))

    def get(self, key: str) -> str:
        """The (first) value of `key`; "" when the probe printed none."""
        return self.values.get(key, ("",))[0]

    @property
    def hostname(self) -> str:
        return self.get("hostname")

    @property
    def instance_id(self) -> str:
        return self.get("instance-id")

    @property
    def cloud_id(self) -> str:
        return self.get("cloud-id")

    @property
    def datasource(self) -> str:
        """cloud-init's ``v1.subplatform``: ``metadata (http://169.254.169.254)``,
        ``config-disk (/dev/sr0)`` …"""
        return self.get("datasource")

    @property
    def ds_identify(self) -> str:
        """The data source list cloud-init's ds-identify chose (``datasource_list: [ Ec2,
        None ]``)."""
        return self.get("ds-identify")

    @property
    def root_device(self) -> str:
        return self.get("root-device")

    @property
    def root_fstype(self) -> str:
        return self.get("root-fstype")

    @property
    def root_size(self) -> int:
        """Bytes in the root file system (``df``)."""
        return int(self.get("root-size") or 0)

    @property
    def disk_size(self) -> int:
        """Bytes of the disk that holds the root file system."""
        return int(self.get("disk-size") or 0)

    @property
    def addresses(self) -> tuple[Address, ...]:
        found = []
        for line in self.values.get("address", ()):
            match = _ADDRESS.match(line)
            if match:
                found.append(Address(match[1], match[2], " dynamic " in f" {match[3]} "))
        return tuple(found)

    def authorized_keys(self, user: str) -> tuple[str, ...]:
        """The keys in `user`'s ``~/.ssh/authorized_keys``."""
        return tuple(value.split(" ", 1)[1] for value in self.values.get("authorized-key", ())
                     if value.split(" ", 1)[0] == user and " " in value)


def report(console: str) -> str:
    """The boot's timing report (``systemd-analyze`` …), or "" when it is not there."""
    begin = console.find(REPORT_BEGIN)
    end = console.find(REPORT_END, begin)
    return console[begin + len(REPORT_BEGIN):end].strip("\n") if 0 <= begin < end else ""


_PER_BOOT = re.compile(rf"{PER_BOOT} instance-id=(\S*) instances=(\d+)\n")  # whole line


def per_boot(console: str) -> tuple[str, int] | None:
    """(instance id, number of instances seen) from the first complete per-boot line on
    `console`."""
    match = _PER_BOOT.search(console)
    return (match[1], int(match[2])) if match else None
