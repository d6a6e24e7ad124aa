#!/bin/sh
# Run one command inside a Debian root tree as if the tree were a running system.
#
# Usage: in-root.sh ROOT COMMAND [ARG...]
#        in-root.sh ROOT --script FILE [ARG...]
#
# With --script, FILE (a path outside the tree) is copied into the tree's private /run and run
# there with its #! interpreter, or /bin/sh without one.
#
# Run it as the first process of fresh mount, PID and UTS namespaces (unshare --mount --pid --uts
# --fork): commands see the image's host name, not the build host's, and what this script mounts
# (/proc, /sys, /dev, /run) and every process the command leaves behind vanish with the
# namespaces, so nothing leaks into the host, and nothing of it ends up in the image when the
# tree is turned into a file system afterwards.
#
# Templates come from whoever may call the API, and their commands run as root. So the command
# is confined more than by a chroot: the tree becomes the namespace's root (pivot_root, the host's
# file systems detached), /dev is a small tmpfs with the usual nodes, kernel settings under
# /proc/sys are read-only, and the command runs without the capabilities that reach past the
# tree (mounting, device nodes, raw I/O, modules, clock, reboot, tracing, network configuration,
# chroot). Installing packages needs none of them. The environment is reset to what a Debian
# maintainer script expects.
set -eu

root=$1
shift

if [ -s "$root/etc/hostname" ]; then
    hostname "$(cat "$root/etc/hostname")"
fi

mount --rbind "$root" "$root"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
# Kernel settings are the host's: read-only, as is /proc/sysrq-trigger.
for path in sys sysrq-trigger; do
    if [ -e "$root/proc/$path" ]; then
        mount --bind "$root/proc/$path" "$root/proc/$path"
        mount -o remount,bind,ro "$root/proc/$path"
    fi
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"

mount -t tmpfs -o nosuid,mode=0755,size=16m tmpfs "$root/dev"
for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    name=${node%%:*}
    numbers=${node#*:}
    mknod -m 0666 "$root/dev/$name" c "${numbers%:*}" "${numbers#*:}"
done
mkdir -m 0755 "$root/dev/pts"
mkdir -m 1777 "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"

mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs "$root/run"
mkdir -m 1777 "$root/run/lock"

# Name resolution for apt and the template's commands. An image's /etc/resolv.conf links into
# /run (systemd-resolved), which is empty here: give the link the host's resolver configuration.
# A plain file (mmdebstrap's copy of the host's, or one a template wrote) is used as it is.
if [ -L "$root/etc/resolv.conf" ]; then
    target=$(readlink "$root/etc/resolv.conf")
    case $target in
        /run/*) resolv=$root$target ;;
        ../run/*) resolv=$root/${target#../} ;;
        *) resolv= ;;
    esac
    if [ -n "$resolv" ]; then
        mkdir -p "${resolv%/*}"
        cat /etc/resolv.conf > "$resolv"
    fi
fi

if [ "${1-}" = --script ]; then
    script=/run/imagefactory-script
    cat "$2" > "$root$script"
    chmod 0700 "$root$script"
    shift 2
    if [ "$(head -c 2 "$root$script")" = "#!" ]; then
        set -- "$script" "$@"
    else
        set -- /bin/sh "$script" "$@"
    fi
fi

# The tree becomes this namespace's root (pivot_root, then the host's file systems are detached):
# unlike a chroot, there is no way back out to the host's files from it.
mkdir "$root/run/imagefactory-host"
cd "$root"
pivot_root . run/imagefactory-host
umount -l /run/imagefactory-host
rmdir /run/imagefactory-host
cd /

# Root inside the tree, but without the capabilities that reach past it: no mounts, device
# nodes, raw I/O, kernel modules, clock, reboot, tracing, network configuration or chroot.
exec setpriv --bounding-set=-all,+chown,+dac_override,+dac_read_search,+fowner,+fsetid,+kill,\
+setgid,+setuid,+setpcap,+setfcap,+linux_immutable,+net_bind_service,+net_broadcast,+net_raw,\
+ipc_lock,+ipc_owner,+sys_nice,+sys_resource,+sys_tty_config,+lease,+audit_write -- \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "$@"
