#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) for imagefactory: system packages, then a
# virtual environment with the core and every plugin in it. Safe to run again: it only
# installs what is missing. `bootstrap.sh test` also installs the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

packages=(python3-venv python3-dev gcc git ca-certificates procps util-linux coreutils)
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
