#!/bin/sh
# Give one image its identity: host name, file systems (by UUID), root password. Runs inside
# the tree (in the build sandbox, rootfs.py) before the template's customisation, so that its commands see the real
# thing. Arguments: HOSTNAME ROOT_FS_UUID ESP_VOLUME_ID. Standard input: the root password on
# one line, stored as a SHA-512 crypt hash; nothing locks the root account.
set -eu
hostname=$1
root_uuid=$2
esp_id=$3

echo "$hostname" > /etc/hostname
cat > /etc/hosts <<EOF_HOSTS
127.0.0.1	localhost
127.0.1.1	$hostname
::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
EOF_HOSTS

# The EFI system partition holds the kernel and initramfs both boot loaders load; it is
# mounted so that kernel updates reach it (see /etc/kernel/postinst.d/zz-imagefactory-esp).
cat > /etc/fstab <<EOF_FSTAB
# Written by imagefactory.
# <file system>	<mount point>	<type>	<options>	<dump>	<pass>
UUID=$root_uuid	/	ext4	errors=remount-ro	0	1
UUID=$esp_id	/boot/efi	vfat	umask=0077,nofail	0	0
EOF_FSTAB

if IFS= read -r password && [ -n "$password" ]; then
    printf 'root:%s\n' "$password" | chpasswd --crypt-method SHA512
else
    passwd --lock root
fi
