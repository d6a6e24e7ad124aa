"""The session's image boots under QEMU, with BIOS (syslinux) and with UEFI (OVMF, GRUB), to the
marker one of its TDL commands arranged to print, and to the login prompt."""

from __future__ import annotations

import os

import pytest
from debian_plugin_testing import BOOT_MARKER, Build
from imagefactory_core.testing import boot_and_wait

pytestmark = pytest.mark.slow

# Under TCG on a quiet 2-core host the image reaches its login prompt in about 20 s; a busy
# host (other builds, other VMs) can make that several times longer.
BOOT_TIMEOUT = float(os.environ.get("IMAGEFACTORY_TEST_BOOT_TIMEOUT", "300"))


def test_bios_boot_reaches_the_marker_and_the_login_prompt(image: Build):
    console = boot_and_wait(image.disk, [BOOT_MARKER, "login:"], BOOT_TIMEOUT, firmware="bios")
    assert "SYSLINUX" in console
    assert "imagefactory-debian-test login:" in console


def test_uefi_boot_reaches_the_marker_and_the_login_prompt(image: Build):
    console = boot_and_wait(image.disk, [BOOT_MARKER, "login:"], BOOT_TIMEOUT, firmware="uefi")
    assert "GRUB" in console
    assert "imagefactory-debian-test login:" in console
