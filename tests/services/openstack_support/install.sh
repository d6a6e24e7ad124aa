#!/usr/bin/env bash
# Install Keystone + Glance (and gunicorn, python-openstackclient) into their own venv.
#
# They pin many dependencies, so they never go into the project's .venv. The venv is cached:
# when it exists, was built from this requirements.txt and imports, nothing is installed (well
# under a second), so CI can call this first and keep test time predictable. Prints the venv path
# on standard output; everything else goes to standard error.
#
# Environment: IMAGEFACTORY_OPENSTACK_VENV (default /var/tmp/imagefactory-openstack-venv),
#              IMAGEFACTORY_OPENSTACK_PYTHON (default python3.11, else python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${IMAGEFACTORY_OPENSTACK_VENV:-/var/tmp/imagefactory-openstack-venv}"
python="${IMAGEFACTORY_OPENSTACK_PYTHON:-$(command -v python3.11 || command -v python3)}"
requirements="$here/requirements.txt"
stamp="$venv/.imagefactory-requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"

works() {
    [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]] &&
        "$venv/bin/python" -c 'import keystone.server, glance.common, gunicorn, openstackclient' \
            2>/dev/null
}

# Serialise concurrent callers (two pytest sessions, CI and a developer); the lock lives beside
# the venv because pip's console scripts hard-code the venv path, so it must be built in place.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

if ! works; then
    started=$SECONDS
    # The stamp is written last: a venv without it is half-built and is rebuilt from scratch.
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2
    # pip's output is kept in the venv and shown only when it fails.
    log="$venv/pip-install.log"
    if ! { "$venv/bin/pip" install --disable-pip-version-check --upgrade pip &&
           "$venv/bin/pip" install --disable-pip-version-check -r "$requirements"; } \
           >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        exit 1
    fi
    echo "$wanted" > "$stamp"
    works || { echo "the venv $venv does not import keystone and glance" >&2; exit 1; }
    echo "installed Keystone + Glance into $venv in $((SECONDS - started)) s" >&2
fi
echo "$venv"
