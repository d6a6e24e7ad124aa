#!/bin/sh
# Settings that hold while the plugin installs packages and runs commands in the tree, and must
# not stay in the image. Runs inside the tree (in the build sandbox, rootfs.py).
#   build-env.sh begin [APT_OPTION...]   (apt.conf lines, e.g. the build's proxy)
#   build-env.sh end
set -eu
case $1 in
begin)
    shift
    # Packages must not start services in a tree that is not running.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    # dpkg need not fsync: the tree becomes a file system later, or is thrown away.
    echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/zz-imagefactory-build
    # An empty directory of source parts: a build-only source list (if the options name one)
    # is then the only source apt reads.
    mkdir -p /etc/apt/imagefactory-build.list.d
    # No translated package descriptions: nobody reads them during a build.
    printf '%s\n' 'Acquire::Retries "3";' 'Acquire::Languages "none";' "$@" \
        > /etc/apt/apt.conf.d/00imagefactory-build
    ;;
end)
    rm -f /usr/sbin/policy-rc.d /etc/dpkg/dpkg.cfg.d/zz-imagefactory-build \
        /etc/apt/apt.conf.d/00imagefactory-build /etc/apt/imagefactory-build.list
    rmdir /etc/apt/imagefactory-build.list.d
    ;;
esac
