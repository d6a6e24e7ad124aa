#!/bin/sh
# Leave nothing in the image that must differ between machines started from it, or that only
# served the build. Runs inside the tree (in the build sandbox, rootfs.py) after the template's customisation.
set -eu

# Every machine makes its own machine id at first boot.
if [ -e /etc/machine-id ]; then
    : > /etc/machine-id
fi
rm -f /var/lib/dbus/machine-id

# SSH host keys made while installing openssh-server would be shared by every machine: remove
# them, and have each machine make its own before sshd first starts.
rm -f /etc/ssh/ssh_host_*
if [ -e /lib/systemd/system/ssh.service ]; then
    cat > /etc/systemd/system/imagefactory-ssh-host-keys.service <<'UNIT'
# Written by imagefactory: images carry no SSH host keys; make them at first boot.
[Unit]
Description=Generate the SSH host keys of this machine
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
UNIT
    systemctl enable imagefactory-ssh-host-keys.service
fi

# Downloaded packages and package lists: stale the day the image is used, and large.
apt-get clean
find /var/lib/apt/lists -type f -delete
find /tmp -mindepth 1 -delete
