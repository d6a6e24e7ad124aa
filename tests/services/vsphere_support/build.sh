#!/usr/bin/env bash
# Build govmomi's vCenter simulator (vcsim.go beside this script) from Debian's packages.
#
# Installs golang-go and golang-github-vmware-govmomi-dev when missing (as root), then builds
# with GOPATH pointing at Debian's /usr/share/gocode and modules off: no Go module is ever
# downloaded. The binary is cached per machine, keyed by the source and the govmomi package
# version: when it exists nothing is built (well under a second), so `make test` calls this
# first and keeps test time predictable. Prints the binary's path on standard output;
# everything else goes to standard error.
#
# Environment: IMAGEFACTORY_VCSIM_CACHE (default /var/tmp/imagefactory-vcsim).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${IMAGEFACTORY_VCSIM_CACHE:-/var/tmp/imagefactory-vcsim}"
packages=(golang-go golang-github-vmware-govmomi-dev)

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "vcsim: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

govmomi="$(dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev)"
key="$( { cat "$here/vcsim.go"; echo "$govmomi"; } | sha256sum | cut -c1-16)"
binary="$cache/$key/vcsim"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # two sessions building at once would race on the same directory

if [ ! -x "$binary" ]; then
    started=$SECONDS
    work="$(mktemp -d "$cache/build.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/src/vcsim-imagefactory"
    cp "$here/vcsim.go" "$work/src/vcsim-imagefactory/main.go"
    (cd "$work/src/vcsim-imagefactory" &&
        GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOCACHE="$work/cache" \
        GOPROXY=off GOFLAGS= go build -o "$work/vcsim" . >&2)
    mkdir -p "$cache/$key"
    mv "$work/vcsim" "$binary"  # last: a binary that exists is a whole one
    echo "vcsim: built $binary in $((SECONDS - started)) s" >&2
fi
echo "$binary"
