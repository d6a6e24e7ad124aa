"""The session's real image: what is in it, its ICICLE, its progress, a clean file system."""

from __future__ import annotations

import re
import subprocess

import pytest
from debian_plugin_testing import (
    BASE64_CONTENT,
    JEOS_PHASES,
    ROOT_PASSWORD,
    URL_CONTENT,
    Build,
    mounted_root,
)
from imagefactory_core.plugin import parse_icicle
from imagefactory_debian import phases, releases
from imagefactory_debian.disk import ESP_START, Layout, MiB

pytestmark = pytest.mark.slow


def test_icicle_lists_the_installed_packages_with_the_extra_command(image: Build):
    pairs = parse_icicle(image.result.icicle)
    names = [name for name, _ in pairs]
    for package in ("less", "tree", "systemd", "udev", "linux-image-amd64"):
        assert any(n.startswith(f"{package}-") for n in names), package
    assert all(n.endswith(("-amd64", "-all")) for n in names)
    # extra_command printed each package's installed size, one line per package
    assert all(extra is not None and extra.isdigit() for _, extra in pairs)
    assert "<description>imagefactory-debian test image" in image.result.icicle


def test_the_image_has_the_templates_customisation_and_identity(image: Build):
    with mounted_root(image.disk) as root:
        def text(path: str) -> str:
            return (root / path.lstrip("/")).read_text()

        assert text("/etc/hostname") == "imagefactory-debian-test\n"
        assert text("/etc/imagefactory-test/pre.txt") == "precommand\n"
        assert text("/etc/imagefactory-test/raw.txt") == "raw content"
        assert (root / "etc/imagefactory-test/base64.txt").read_bytes() == BASE64_CONTENT
        assert (root / "etc/imagefactory-test/url.txt").read_bytes() == URL_CONTENT
        # commands ran after packages and files, in position order, under the image's name
        assert text("/etc/imagefactory-test/order.txt") == "/usr/bin/tree\n"
        assert text("/etc/imagefactory-test/hostname.txt") == "imagefactory-debian-test\n"
        assert text("/etc/imagefactory-test/confined.txt") == "confined\n"
        assert (root / "etc/systemd/system/multi-user.target.wants/"
                       "imagefactory-boot-marker.service").is_symlink()

        fstab = text("/etc/fstab")
        assert f"UUID={image.result.properties['root_fs_uuid']}\t/\text4" in fstab
        assert "\t/boot/efi\tvfat\t" in fstab
        root_entry = next(line for line in text("/etc/shadow").splitlines()
                          if line.startswith("root:"))
        assert root_entry.split(":")[1].startswith("$6$")  # SHA-512 crypt

        # nothing of the build left in the image
        assert not any((root / "etc/apt/sources.list.d").iterdir())  # transient repository
        for leftover in ("usr/sbin/policy-rc.d", "etc/apt/apt.conf.d/00imagefactory-build",
                         "etc/dpkg/dpkg.cfg.d/zz-imagefactory-build",
                         "etc/apt/apt.conf.d/99mmdebstrap"):
            assert not (root / leftover).exists(), leftover
        assert not list((root / "var/cache/apt/archives").glob("*.deb"))
        assert not [p for p in (root / "var/lib/apt/lists").rglob("*") if p.is_file()]
        assert text("/etc/machine-id") == ""
        assert (root / "etc/resolv.conf").readlink().as_posix().endswith("stub-resolv.conf")


def test_the_root_password_never_reaches_the_log(image: Build):
    assert not [line for line in image.ctx.lines if ROOT_PASSWORD in line]


def test_the_disk_is_sparse_gpt_with_clean_file_systems(image: Build, tmp_path):
    layout = Layout.read(image.ctx, image.disk, releases.ARCHITECTURES["x86_64"])
    assert layout.size == image.template.disk_size == 3 << 30
    assert layout.esp.start == ESP_START
    assert image.disk.stat().st_blocks * 512 < layout.size / 2  # sparse
    loop = subprocess.run(["losetup", "--find", "--show", "--read-only",
                           "--offset", str(layout.root.start), "--sizelimit",
                           str(layout.root.size), image.disk],
                          capture_output=True, text=True, check=True).stdout.strip()
    try:
        check = subprocess.run(["e2fsck", "-f", "-n", loop], capture_output=True, text=True)
    finally:
        subprocess.run(["losetup", "--detach", loop], check=True)
    assert check.returncode == 0, check.stdout + check.stderr
    listing = subprocess.run(["mdir", "-/", "-a", "-i", f"{image.disk}@@{layout.esp.start}", "::"],
                             capture_output=True, text=True, check=True,
                             env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}).stdout
    for name in ("BOOTX64  EFI", "grub     cfg", "ldlinux  sys", "syslinux cfg", "vmlinuz",
                 "initrd   img"):
        assert name in listing, name
    assert layout.esp.size == 255 * MiB


def test_the_root_file_system_is_the_jeos_image_changed_not_made_again(image: Build):
    """The session's image (checked above, booted by test_boot) comes from the update path."""
    assert any(re.fullmatch(r"root-fs-update: \d+ debugfs commands applied", line)
               for line in image.ctx.lines)
    assert not any("mkfs.ext4 -d" in line for line in image.ctx.lines
                   if "root file system" in line)  # no fallback, whose log would say so


def test_progress_names_real_phases_and_only_moves_forward(image: Build):
    percents = [percent for percent, _ in image.ctx.reports]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    activities = " ".join(activity or "" for _, activity in image.ctx.reports)
    for phase in ("customise: packages", "customise: files", "customise: commands",
                  "disk: EFI system partition", "disk: root file system"):
        assert phase in activities
    if image.result.properties["jeos_cache"] == "miss":
        for phase in ("download:", "unpack:", "configure:"):
            assert phase in activities


def test_the_log_gives_each_phases_wall_time(image: Build):
    timed = phases.parse(image.ctx.lines)
    expected = ["configure", "customise", "icicle", "finalize", "partition", "root-fs", "esp",
                "total"]
    if image.result.properties["jeos_cache"] == "miss":
        expected[:0] = JEOS_PHASES
    assert list(timed) == expected
    assert 0 < timed["total"] <= image.seconds + 0.1
    assert sum(timed.values()) - timed["total"] <= timed["total"] + 0.1 * len(timed)
