#!/bin/sh
# Write the EFI system partition of a disk image without mounting it (the build host may have
# no FAT support): mkfs.fat and mtools work at the partition's offset in the disk file. One
# script rather than a command per file, because every command the plugin runs costs time.
#
#   esp.sh install DISK OFFSET SIZE_KIB VOLUME_ID GRUB_TARGET EFI_LOADER CONFIG_DIR KERNEL_DIR
#       format; install GRUB as \EFI\BOOT\EFI_LOADER with CONFIG_DIR/grub.cfg, and syslinux
#       when CONFIG_DIR has a syslinux.cfg; copy KERNEL_DIR's vmlinuz and initrd.img
#   esp.sh kernel DISK OFFSET KERNEL_DIR
#       copy KERNEL_DIR's vmlinuz and initrd.img only
#
# KERNEL_DIR holds host copies the plugin took out of the image tree (esp.py): nothing here reads
# the tree or runs anything from it.
set -eux
export MTOOLS_SKIP_CHECK=1

# Everything grub.cfg uses is built into the EFI image: it never loads modules from disk.
grub_modules="part_gpt part_msdos fat ext2 normal boot linux configfile search search_fs_uuid
    search_label echo test serial terminal gzio all_video"

copy_kernel() {  # DISK OFFSET KERNEL_DIR
    for name in vmlinuz initrd.img; do
        mcopy -o -i "$1@@$2" "$3/$name" "::/$name"
    done
}

case $1 in
install)
    disk=$2 offset=$3 size=$4 volume=$5 target=$6 loader=$7 config=$8 kernel=$9
    image=$disk@@$offset
    mkfs.fat -F 32 -s 2 -n EFI -i "$volume" --offset=$((offset / 512)) "$disk" "$size"
    mmd -i "$image" ::/EFI ::/EFI/BOOT
    # shellcheck disable=SC2086
    grub-mkimage --format "$target" --output "$config/$loader" --prefix /EFI/BOOT $grub_modules
    mcopy -i "$image" "$config/$loader" "$config/grub.cfg" ::/EFI/BOOT/
    if [ -e "$config/syslinux.cfg" ]; then
        mmd -i "$image" ::/syslinux
        syslinux --install --offset "$offset" --directory /syslinux "$disk"
        mcopy -i "$image" "$config/syslinux.cfg" ::/syslinux/
    fi
    copy_kernel "$disk" "$offset" "$kernel"
    ;;
kernel)
    copy_kernel "$2" "$3" "$4"
    ;;
*)
    echo "usage: $0 install|kernel ..." >&2
    exit 2
    ;;
esac
