#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) for imagefactory: system packages, then a
# virtual environment with the core and every plugin in it. Safe to run again: it only
# installs what is missing. `bootstrap.sh test` also installs the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

packages=(python3-venv python3-dev gcc git ca-certificates procps util-linux coreutils)
# The build sandbox (imagefactory_core.sandbox): newuidmap/newgidmap map its user namespace onto
# root's subordinate ids; libseccomp is loaded by pyseccomp. busybox-static makes the tiny trees
# of the sandbox tests, iproute2 their network namespaces, libc6-dev their static C helper.
packages+=(uidmap libseccomp2 busybox-static iproute2 libc6-dev)
# The test suite runs the store on a real PostgreSQL server it starts (tests/services/postgresql.py).
[ "$mode" = test ] && packages+=(postgresql)
# tests/cluster's Celery queue runs on a real Redis it starts (tests/services/redis.py).
[ "$mode" = test ] && packages+=(redis-server)
# The ec2 plugin's raw target clones the base disk on btrfs; a test checks that on a loop mount.
[ "$mode" = test ] && packages+=(btrfs-progs)
for list in plugins/*/apt-packages.txt; do
    [ -f "$list" ] && mapfile -t -O "${#packages[@]}" packages < <(grep -v '^\s*#' "$list" | grep .)
done
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Sandboxed processes run as root's subordinate ids: an escape from a sandbox is an unprivileged
# user on the host. Root gets 65536 ids above every range already given (useradd's start is
# 100000), the same range in both files, unless the operator gave root a range already.
if ! grep -q '^root:' /etc/subuid 2>/dev/null || ! grep -q '^root:' /etc/subgid 2>/dev/null; then
    start=$(cat /etc/subuid /etc/subgid 2>/dev/null |
            awk -F: 'BEGIN { top = 100000 } $3 > 0 && $2 + $3 > top { top = $2 + $3 } END { print top }')
    for file in /etc/subuid /etc/subgid; do
        if ! grep -q '^root:' "$file" 2>/dev/null; then
            echo "bootstrap: giving root the subordinate ids $start-$((start + 65535)) in $file"
            echo "root:$start:65536" >>"$file"
        fi
    done
fi

# imagefactory-debian makes its cached JEOS trees with mmdebstrap's unshare mode, which maps
# the unshared root onto the *calling* user's subordinate ids (run by root it maps root to
# root). It runs as this system user, whose range is root's, so the trees it makes are owned
# by the build sandbox's ids and no maintainer script runs as host root.
if ! id imagefactory-build >/dev/null 2>&1; then
    echo "bootstrap: adding the system user imagefactory-build (runs mmdebstrap, unprivileged)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        imagefactory-build
fi
for file in /etc/subuid /etc/subgid; do
    root_range=$(grep '^root:' "$file" | head -n 1 | cut -d: -f2-)
    if ! grep -q "^imagefactory-build:$root_range\$" "$file"; then
        sed -i '/^imagefactory-build:/d' "$file"
        echo "bootstrap: giving imagefactory-build root's subordinate ids in $file"
        echo "imagefactory-build:$root_range" >>"$file"
    fi
done

# libvirtd (imagefactory-fedora's libvirt_connection: system) will not start its QEMU driver
# without the user Debian's libvirt-daemon-system adds, in /dev/kvm's group (else libvirtd
# probes QEMU again before every domain, for a minute here); that package (systemd units,
# polkit, default network) is not needed otherwise. Its guests run as the sandbox's ids.
if command -v libvirtd >/dev/null && ! id libvirt-qemu >/dev/null 2>&1; then
    echo "bootstrap: adding the system user libvirt-qemu (libvirtd's default QEMU user)"
    useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin \
        libvirt-qemu
fi
if id libvirt-qemu >/dev/null 2>&1 && [ -c /dev/kvm ]; then
    kvm_group=$(stat -c %G /dev/kvm)
    if getent group "$kvm_group" >/dev/null && ! id -nG libvirt-qemu | grep -qw "$kvm_group"; then
        usermod -aG "$kvm_group" libvirt-qemu
    fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
editables=(-e imagefactory_core)
for plugin in plugins/*/; do editables+=(-e "$plugin"); done
if [ "$mode" = test ]; then
    .venv/bin/pip install -q "${editables[@]}" -r requirements-test.txt
else
    .venv/bin/pip install -q "${editables[@]}"
fi
echo "bootstrap: ready ($(.venv/bin/python --version))"
