#!/bin/sh
# mmdebstrap setup hook for images built with with_docs=false: dpkg leaves out documentation,
# manual pages and translations, now and for every package installed later in the image.
# Copyright files stay, as the packages' licences require.
# Usage (by mmdebstrap): no-docs.sh ROOT
set -eu
root=$1
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
