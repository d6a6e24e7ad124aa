"""A real Debian image through the REST API: it boots, its ICICLE is right, a failing command
fails the build with its output, and a cancelled build leaves nothing behind."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest
from imagefactory_core.tdl import parse_icicle
from imagefactory_core.testing import boot_and_wait, wait_for_status

from tests.services.mirror import MirrorRelay

from .conftest import BOOT_MARKER, MIRROR, bookworm_tdl, build

pytestmark = pytest.mark.slow


def test_base_image_boots_to_the_marker_and_a_login_prompt(e2e_app, e2e_client, bookworm_base):
    body = e2e_app.services.store.body_path(bookworm_base["id"])
    console = boot_and_wait(body, [BOOT_MARKER, "login:"], timeout=240)
    assert BOOT_MARKER in console
    assert "e2e-bookworm login:" in console  # the hostname comes from the TDL name


def test_raw_image_download_is_the_disk(e2e_app, e2e_client, bookworm_base):
    href = f"/imagefactory/base_images/{bookworm_base['id']}/raw_image"
    result = e2e_client.simulate_get(href, headers={"Range": "bytes=0-511"})
    assert result.status_code == 206
    assert len(result.content) == 512
    assert result.content[510:] == b"\x55\xaa"  # a partitioned, bootable disk
    body = e2e_app.services.store.body_path(bookworm_base["id"])
    assert result.content == body.read_bytes()[:512]
    size = int(result.headers["content-range"].rsplit("/", 1)[1])
    assert size == 3 * 1024**3


def test_icicle_lists_the_templates_packages(bookworm_base):
    entries = [name for name, _extra in parse_icicle(bookworm_base["icicle"])]

    def installed(package: str) -> bool:  # entries are name-version-arch; versions start digits
        return any(re.match(rf"{re.escape(package)}-\d", entry) for entry in entries)

    assert all(installed(p) for p in ("less", "systemd", "udev"))
    assert any(entry.startswith("linux-image-") for entry in entries)
    assert all(entry.endswith(("-amd64", "-all")) for entry in entries)


def test_root_password_is_neither_shown_nor_logged(e2e_app, e2e_client, bookworm_base):
    assert "e2e-Secret-pw" not in e2e_client.simulate_get(
        f"/imagefactory/base_images/{bookworm_base['id']}").text
    log = e2e_client.simulate_get(f"/imagefactory/base_images/{bookworm_base['id']}/log").text
    assert "== customise" in log  # the build's own steps are there
    assert "e2e-Secret-pw" not in log


def test_a_failing_command_fails_the_build_with_its_output(e2e_client, bookworm_base):
    failing = ("<command name='break-it'>echo E2E-FAILURE-OUTPUT; "
               "echo to-stderr 1>&amp;2; exit 3</command>")
    image = build(e2e_client, "base_images",
                  {"template": bookworm_tdl(name="e2e-failing", commands=failing)})
    assert image["status"] == "FAILED"
    assert "E2E-FAILURE-OUTPUT" in image["status_detail"]["error"]
    assert "exit code 3" in image["status_detail"]["error"]


def test_apt_goes_through_the_operators_apt_proxy(e2e_client, bookworm_base):
    """The sandbox's egress proxy chains to the operator's apt proxy (a recording relay here):
    the template's package lists and packages come through it."""
    with MirrorRelay(MIRROR) as proxy:
        image = build(e2e_client, "base_images", {
            "template": bookworm_tdl(name="e2e-apt-proxy"),
            "parameters": {"apt_proxy": proxy.url}})
    assert image["status"] == "COMPLETE", image["status_detail"]
    assert any(path.startswith("http://") and "/dists/bookworm/" in path
               for path in proxy.paths), proxy.paths


def _loop_devices_under(root: Path) -> list[str]:
    """Loop devices whose backing file is below `root` (this run's, not the machine's)."""
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(root) in line]


def test_a_cancelled_build_leaves_no_mounts_loops_or_files(e2e_app, e2e_client, bookworm_base):
    work_root = e2e_app.services.config.work_dir
    # a duration no other process on the machine runs: the leftover check sees only this test's
    slow = f"sleep 600.{secrets.randbelow(10**6):06d}"
    result = e2e_client.simulate_post("/imagefactory/base_images", json={"base_image": {
        "template": bookworm_tdl(name="e2e-cancelled",
                                 commands=f"<command name='slow'>{slow}</command>")}})
    assert result.status_code == 202
    image_id = result.json["base_image"]["id"]
    href = f"/imagefactory/base_images/{image_id}"
    deadline = time.monotonic() + 900
    while "slow" not in e2e_client.simulate_get(f"{href}/log").text:
        assert time.monotonic() < deadline, "the build never reached its slow command"
        assert e2e_client.simulate_get(href).json["base_image"]["status"] in ("PENDING",
                                                                              "BUILDING")
        time.sleep(1)
    time.sleep(2)
    started = time.monotonic()
    assert e2e_client.simulate_delete(href).status_code == 204
    final = wait_for_status(e2e_client, href, timeout=60)
    assert final["status"] == "DELETED"
    assert time.monotonic() - started < 30
    mounts = Path("/proc/mounts").read_text()
    assert str(work_root / image_id) not in mounts
    assert not (work_root / image_id).exists()
    assert _loop_devices_under(work_root) == []
    assert not e2e_app.services.store.body_path(image_id).exists()
    leftovers = subprocess.run(["pgrep", "-f", slow], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
