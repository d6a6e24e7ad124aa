"""What `boot_first_time` decides without a guest: the overlay it boots, and when it gives up
(fed consoles recorded from real boots; tests/e2e/test_cloud_boot.py boots real images)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from imagefactory_core.testing import BootError, Console, GiB, disk_size, make_overlay
from imagefactory_core.testing.boot import firstboot

BOOTING = b"""[    0.000000] Linux version 6.1.0-57-amd64
[    5.707000] cloud-init[262]: Cloud-init v. 22.4.2 running 'init-local' at Mon, 30 Nov 2026
"""


def info(path) -> dict:
    return json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)],
                                     check=True, capture_output=True, text=True).stdout)


@pytest.mark.parametrize(("fmt", "driver"), [("raw", "raw"), ("vhd", "vpc")])
def test_the_overlay_is_the_disk_enlarged_and_leaves_it_alone(tmp_path, fmt, driver):
    disk = tmp_path / f"disk.{fmt}"
    options = ["-o", "subformat=fixed,force_size=on"] if fmt == "vhd" else []
    subprocess.run(["qemu-img", "create", "-q", "-f", driver, *options, str(disk), "64M"],
                   check=True)
    before = disk.read_bytes()
    overlay = make_overlay(disk, fmt, tmp_path / "overlay.qcow2", 1 * GiB)
    overlay_info = info(overlay)
    assert overlay_info["format"] == "qcow2"
    assert overlay_info["virtual-size"] == GiB
    assert overlay_info["backing-filename"] == str(disk)
    assert overlay_info["backing-filename-format"] == driver
    assert disk_size(disk, fmt) == 64 << 20
    assert disk.read_bytes() == before
    same = make_overlay(disk, fmt, tmp_path / "same.qcow2")
    assert info(same)["virtual-size"] == 64 << 20
    with pytest.raises(ValueError, match="cannot shrink"):
        make_overlay(disk, fmt, tmp_path / "small.qcow2", 1 << 20)


def gives_up(console_text: bytes, checks) -> BootError:
    console = Console(time.monotonic())
    console.feed(console_text)
    began = time.monotonic()
    with pytest.raises(BootError) as raised:
        console.wait(firstboot._first_boot_pending, 600, checks)
    assert time.monotonic() - began < 1
    return raised.value


def test_cloud_init_waiting_for_a_metadata_service_fails_the_boot_at_once():
    error = gives_up(BOOTING + b"""[  103.276023] cloud-init[279]: 2026-11-30 22:19:52,408 - \
url_helper.py[WARNING]: Calling 'None' failed [0/120s]: request error [HTTPConnectionPool(\
host='169.254.169.254', port=80): Max retries exceeded]
""", firstboot._first_boot_failures())
    assert "waiting for a metadata service that does not answer" in str(error)
    assert "Calling 'None' failed [0/120s]" in str(error)


def test_cloud_init_finishing_without_the_probe_fails_the_boot_at_once():
    error = gives_up(BOOTING + b"""[  110.49] cloud-init[433]: Cloud-init v. 22.4.2 finished \
at Mon, 30 Nov 2026 22:05:44 +0000. Datasource DataSourceNone.  Up 110.33 seconds
""", firstboot._first_boot_failures())
    assert "cloud-init finished without running the user-data" in str(error)
    assert "Datasource DataSourceNone" in str(error)


def test_a_login_prompt_without_cloud_init_fails_the_boot_at_once():
    error = gives_up(b"[    0.000000] Linux version 6.1.0-57-amd64\n\ndebian login: ",
                     firstboot._first_boot_failures())
    assert "cloud-init never ran" in str(error)


def test_a_kernel_panic_fails_the_boot_at_once():
    error = gives_up(b"[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs\n",
                     firstboot._first_boot_failures())
    assert "the kernel panicked" in str(error)


def test_a_boot_with_the_probes_output_is_not_failed():
    console = Console(time.monotonic())
    console.feed(BOOTING + b"host login: \nIMAGEFACTORY-FACTS-BEGIN\nIMAGEFACTORY-FACTS-END\n"
                 b"[ 70.1] cloud-init[4]: Cloud-init v. 22.4.2 finished at Mon. Datasource "
                 b"DataSourceEc2Local.  Up 69.50 seconds\n"
                 b"IMAGEFACTORY-REPORT-BEGIN\nIMAGEFACTORY-REPORT-END\n")
    text = console.wait(firstboot._first_boot_pending, 5, firstboot._first_boot_failures())
    assert text.endswith("IMAGEFACTORY-REPORT-END\n")
