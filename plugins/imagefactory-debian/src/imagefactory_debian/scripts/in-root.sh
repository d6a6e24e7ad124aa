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
# namespaces, so nothing leaks into the host, and nothing of it ends up in the image
# when the tree is turned into a file system afterwards. /dev is a small tmpfs with the usual
# nodes rather than a bind mount of the host's /dev, so package scripts cannot touch host devices.
# The environment is reset: only what a Debian maintainer script expects is passed in.
set -eu

root=$1
shift

if [ -s "$root/etc/hostname" ]; then
    hostname "$(cat "$root/etc/hostname")"
fi

mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
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

# Name resolution for apt and the template's commands: the host's resolver configuration,
# whether the image's /etc/resolv.conf is a file or a link into /run (systemd-resolved).
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
elif [ -f "$root/etc/resolv.conf" ]; then
    cat /etc/resolv.conf > "$root/run/imagefactory-resolv.conf"
    mount --bind "$root/run/imagefactory-resolv.conf" "$root/etc/resolv.conf"
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

exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true \
    chroot "$root" "$@"
