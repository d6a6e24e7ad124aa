#!/bin/sh
# Turn the tree mmdebstrap made into the JEOS tree every image of the same recipe starts from:
# what is the same for all of them (initramfs, networking, boot hooks) is done here, once.
# Runs inside the tree (in the build sandbox, rootfs.py). Arguments: the storage drivers the initramfs carries, or
# "most" for Debian's own MODULES=most.
set -eu

# update-initramfs back in place (see defer-initramfs.sh).
rm -f /usr/sbin/update-initramfs
dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs

mkdir -p /etc/initramfs-tools/conf.d /etc/initramfs-tools/hooks
modules=list
[ "$*" = most ] && modules=most
cat > /etc/initramfs-tools/conf.d/imagefactory.conf <<CONF
# Written by imagefactory. The root file system is ext4 (found by UUID, so nothing to detect);
# "list" means only the drivers named in hooks/imagefactory-drivers, "most" Debian's default.
MODULES=$modules
FSTYPE=ext4
COMPRESS=zstd
CONF
if [ "$modules" = list ]; then
    cat > /etc/initramfs-tools/hooks/imagefactory-drivers <<HOOK
#!/bin/sh
# Written by imagefactory: storage drivers of virtual and cloud machines. They are only added;
# udev loads the ones the machine has.
[ "\$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules $*
HOOK
    chmod 0755 /etc/initramfs-tools/hooks/imagefactory-drivers
fi

# Both boot loaders (syslinux for BIOS, GRUB for UEFI) load the kernel and the initramfs from
# the EFI system partition, mounted at /boot/efi: keep the copies there current.
mkdir -p /boot/efi /etc/kernel/postinst.d /etc/initramfs/post-update.d
cat > /etc/kernel/postinst.d/zz-imagefactory-esp <<'HOOK'
#!/bin/sh
# Written by imagefactory. Both boot loaders of this image load the kernel and the initramfs
# from the EFI system partition (/boot/efi): copy the current ones there.
set -e
mountpoint -q /boot/efi || exit 0
for name in vmlinuz initrd.img; do
    [ -e "/$name" ] || continue
    cp "/$name" "/boot/efi/$name.new"
    mv "/boot/efi/$name.new" "/boot/efi/$name"
done
HOOK
chmod 0755 /etc/kernel/postinst.d/zz-imagefactory-esp
ln -sf /etc/kernel/postinst.d/zz-imagefactory-esp /etc/initramfs/post-update.d/zz-imagefactory-esp

# DHCP on every wired interface, names resolved by systemd-resolved.
mkdir -p /etc/systemd/network
cat > /etc/systemd/network/80-imagefactory-dhcp.network <<'CONF'
# Written by imagefactory: DHCP on every wired interface.
[Match]
Name=en* eth*

[Network]
DHCP=yes
CONF
systemctl enable systemd-networkd.service
if [ -e /lib/systemd/system/systemd-resolved.service ]; then
    systemctl enable systemd-resolved.service
    ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
fi

update-initramfs -c -k all

# mmdebstrap's build-time settings and the host's name do not belong in the image.
# (The package lists and apt's caches stay: customisations start with apt-get update, which is
# quick when they are current. finalize-image.sh removes them from every image.)
rm -f /etc/apt/apt.conf.d/99mmdebstrap /etc/dpkg/dpkg.cfg.d/99mmdebstrap /etc/hostname
