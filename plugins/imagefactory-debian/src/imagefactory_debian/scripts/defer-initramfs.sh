#!/bin/sh
# mmdebstrap essential hook: build the initramfs once, at the end, instead of twice on the way.
#
# Installing a kernel builds its initramfs in the kernel's postinst, and the initramfs-tools
# trigger builds it again once the remaining packages are configured: two identical builds of
# 2 to 18 seconds each. Until jeos-finish.sh undoes this, update-initramfs is diverted away and
# replaced by a no-op; jeos-finish.sh then builds the initramfs once, with the final settings.
# Usage (by mmdebstrap): defer-initramfs.sh ROOT
set -eu
root=$1
chroot "$root" dpkg-divert --quiet --local --rename \
    --divert /usr/sbin/update-initramfs.imagefactory --add /usr/sbin/update-initramfs
printf '#!/bin/sh\nexit 0\n' > "$root/usr/sbin/update-initramfs"
chmod 0755 "$root/usr/sbin/update-initramfs"
