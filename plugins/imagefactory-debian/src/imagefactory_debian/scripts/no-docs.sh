#!/bin/sh
# mmdebstrap hooks for images built with with_docs=false: dpkg leaves out documentation, manual
# pages and translations, now and for every package installed later in the image. Copyright
# files stay, as the packages' licences require.
# Usage (by mmdebstrap):
#   no-docs.sh ROOT          setup hook: the dpkg configuration
#   no-docs.sh ROOT prune    extract hook: mmdebstrap unpacks the essential packages with tar,
#                            which knows nothing of dpkg's rules (only the ones in its own
#                            99mmdebstrap file, through a filter process per package): remove
#                            what the rules exclude before dpkg installs those packages
set -eu
root=$1
if [ "${2:-}" = prune ]; then
    cd "$root/usr/share"
    for dir in man info groff lintian linda; do
        [ ! -d "$dir" ] || find "$dir" -mindepth 1 ! -type d -delete
    done
    [ ! -d doc ] || find doc -mindepth 1 ! -type d ! -path 'doc/*/copyright' -delete
    [ ! -d locale ] || find locale -mindepth 1 ! -type d ! -path locale/locale.alias -delete
    for dir in doc man info groff lintian linda locale; do
        [ ! -d "$dir" ] || find "$dir" -mindepth 1 -depth -type d -empty -delete
    done
    exit 0
fi
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
cat > "$root/etc/dpkg/dpkg.cfg.d/imagefactory-no-docs" <<'CONF'
# Written by imagefactory (with_docs=false): no documentation, manual pages or translations.
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/groff/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
CONF
