#!/bin/sh
# Keep in apt's archives directory only the cached packages whose SHA-256 is the one this
# build's package lists give for them, before apt uses any: apt checks only the size of a
# package it finds there (debcache.py). The hashes of the cached files are in the manifest the
# package cache wrote beside them (computed by the host when it took each file).
# Usage: verify-archives.sh ROOT
#   as mmdebstrap's setup hook (ROOT: the tree being made; apt-get update is run first if the
#   hooks before it did not), or in the build sandbox with ROOT /.
set -eu
root=$1
archives=$root/var/cache/apt/archives
manifest=$archives/.imagefactory-sha256
[ -e "$manifest" ] || exit 0
if [ -n "${MMDEBSTRAP_APT_CONFIG:-}" ] && [ ! -e "$root/var/cache/apt/pkgcache.bin" ]; then
    env --chdir="$root" APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get update --error-on=any
fi
# The names of the manifest's packages that no list vouches for, then a count.
find "$root/var/lib/apt/lists" -maxdepth 1 -type f -name '*_Packages' \
        -exec grep -h -E '^(Package|Version|Architecture|SHA256): |^$' {} + |
    awk -v manifest="$manifest" '
        BEGIN {
            while ((getline entry < manifest) > 0) {
                split(entry, field, " ")
                wanted[field[2]] = field[1]
                total++
            }
        }
        function check(   name) {
            if (package != "" && sha != "") {
                version_name = version
                gsub(/:/, "%3a", version_name)
                name = package "_" version_name "_" arch ".deb"
                if ((name in wanted) && wanted[name] == sha) good[name] = 1
            }
            package = version = arch = sha = ""
        }
        /^$/ { check(); next }
        /^Package: / { check(); package = $2; next }
        /^Version: / { version = $2; next }
        /^Architecture: / { arch = $2; next }
        /^SHA256: / { sha = $2; next }
        END {
            check()
            for (name in wanted) if (!(name in good)) print name
            kept = 0
            for (name in good) kept++
            print "package cache: " kept " of " total + 0 " cached packages match the package lists" > "/dev/stderr"
        }' |
    while read -r name; do
        rm -f -- "$archives/$name"
    done
rm -f -- "$manifest"
