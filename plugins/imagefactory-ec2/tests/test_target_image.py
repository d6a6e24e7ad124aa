"""The ec2 target image: target content, and raw/VMDK/VHD disks that qemu-img recognises."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from imagefactory_core.plugin import BuildCancelled
from imagefactory_core.testing import make_build_context
from imagefactory_ec2 import (
    imagefactory_cloud_targets,
    imagefactory_create_target_image,
    imagefactory_target_content,
)
from imagefactory_ec2.boot_mode import detect_boot_mode
from imagefactory_ec2.disk_format import detect_format


def qemu_info(path: Path, qemu_format: str | None = None) -> dict:
    """qemu-img's view of the file, probed or read as `qemu_format`."""
    named = ["-f", qemu_format] if qemu_format else []
    out = subprocess.run(["qemu-img", "info", "--output=json", *named, str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_registers_the_ec2_target() -> None:
    assert [t.name for t in imagefactory_cloud_targets()] == ["ec2"]


def test_target_content(kit) -> None:
    content = imagefactory_target_content(target="ec2", template=kit.template(),
                                          parameters=kit.parameters())
    assert {"cloud-init", "cloud-guest-utils", "openssh-server"} <= set(content.packages)
    assert "rm -f /etc/ssh/ssh_host_*" in content.commands
    assert b"datasource_list: [ Ec2, None ]" in \
        content.files["/etc/cloud/cloud.cfg.d/90-imagefactory-ec2.cfg"]
    assert "/etc/udev/rules.d/80-net-setup-link.rules" in content.files
    assert any("serial-getty@ttyS0.service" in command for command in content.commands)


@pytest.mark.parametrize(("image_format", "qemu_format"),
                         [("raw", "raw"), ("vmdk", "vmdk"), ("vhd", "vpc")])
def test_target_image_formats(kit, image_format: str, qemu_format: str) -> None:
    source = kit.disk()
    ctx = kit.ctx()
    result = imagefactory_create_target_image(
        ctx=ctx, template=kit.template(), base_image=kit.target(source), source_disk=source,
        target="ec2", parameters=kit.parameters({"ec2_image_format": image_format}))
    assert result.properties == {"disk_format": image_format}
    # qemu-img does not probe fixed VHDs (their only signature is a footer): name the format
    info = qemu_info(ctx.body_path, "vpc" if image_format == "vhd" else None)
    assert info["format"] == qemu_format
    assert info["virtual-size"] == source.stat().st_size
    assert detect_format(ctx.body_path) == image_format
    if image_format == "vmdk":
        assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    kit.assert_progress_monotone(ctx)
    # qemu-img compare reads both as disks: same content, whatever the container
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", qemu_format, str(source),
                    str(ctx.body_path)], check=True, capture_output=True)


def test_raw_target_stays_sparse_and_equal(kit) -> None:
    source = kit.disk()
    ctx = kit.ctx()
    imagefactory_create_target_image(ctx=ctx, template=kit.template(),
                                     base_image=kit.target(source), source_disk=source,
                                     target="ec2", parameters=kit.parameters())
    assert ctx.body_path.read_bytes() == source.read_bytes()
    assert os.stat(ctx.body_path).st_blocks * 512 < 4 * 1024 * 1024  # 32 MiB, ~2 MiB allocated


def test_raw_target_is_a_clone_where_the_file_system_shares_extents(kit) -> None:
    """On btrfs (and XFS with reflink) the raw target shares the base disk's extents: nothing
    is copied, nothing stored twice."""
    volume, mountpoint = kit.tmp_path / "btrfs.img", kit.tmp_path / "btrfs"
    with open(volume, "wb") as file:
        file.truncate(256 * 1024 * 1024)
    subprocess.run(["mkfs.btrfs", "-q", str(volume)], check=True)
    mountpoint.mkdir()
    subprocess.run(["mount", "-o", "loop", str(volume), str(mountpoint)], check=True)
    try:
        source = mountpoint / "disk.raw"
        subprocess.run(["cp", "--sparse=always", "--reflink=never", str(kit.disk()),
                        str(source)], check=True)
        ctx = make_build_context(mountpoint / "ctx", "clone")
        imagefactory_create_target_image(ctx=ctx, template=kit.template(),
                                         base_image=kit.target(source), source_disk=source,
                                         target="ec2", parameters=kit.parameters())
        assert ctx.body_path.read_bytes() == source.read_bytes()
        extents = subprocess.run(["filefrag", "-v", str(ctx.body_path)], check=True,
                                 capture_output=True, text=True).stdout
        flagged = [line for line in extents.splitlines() if line.strip()[:1].isdigit()]
        assert flagged and all("shared" in line for line in flagged), extents
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_raw_target_honours_cancellation(kit) -> None:
    source = kit.disk()
    ctx = kit.ctx()
    ctx.cancel_event.set()
    with pytest.raises(BuildCancelled):
        imagefactory_create_target_image(ctx=ctx, template=kit.template(),
                                         base_image=kit.target(source), source_disk=source,
                                         target="ec2", parameters=kit.parameters())


def test_raw_target_cancelled_mid_copy_stops_copying(kit, on_progress) -> None:
    source = kit.tmp_path / "full.raw"
    source.write_bytes(kit.data(64 * 1024 * 1024))  # 32 chunks of data, no holes
    ctx = kit.ctx()
    on_progress(ctx, lambda percent: percent >= 10 and ctx.cancel_event.set())
    with pytest.raises(BuildCancelled):
        imagefactory_create_target_image(ctx=ctx, template=kit.template(),
                                         base_image=kit.target(source), source_disk=source,
                                         target="ec2", parameters=kit.parameters())
    assert os.stat(ctx.body_path).st_blocks * 512 < 32 * 1024 * 1024
    assert max(percent for percent, _ in ctx.reports) < 50


@pytest.mark.parametrize(("table", "boot_code", "expected"), [
    ("label: gpt\nsize=8MiB, type=U\ntype=L\n", True, "uefi-preferred"),
    ("label: gpt\nsize=8MiB, type=U\ntype=L\n", False, "uefi"),
    ("label: gpt\nsize=1MiB, type=21686148-6449-6E6F-744E-656564454649\ntype=L\n", False,
     "legacy-bios"),
    ("label: dos\ntype=83\n", True, "legacy-bios"),
    ("label: dos\nsize=8MiB, type=ef\ntype=83\n", True, "uefi-preferred"),
    ("label: dos\ntype=83\n", False, None),
    (None, False, None),
])
def test_boot_mode_from_partition_table(kit, table: str | None, boot_code: bool,
                                        expected: str | None) -> None:
    from_disk = kit.tmp_path / "boot.raw"
    with open(from_disk, "wb") as disk:
        disk.truncate(64 * 1024 * 1024)
    if table:
        subprocess.run(["sfdisk", "--quiet", str(from_disk)], input=table.encode(), check=True,
                       capture_output=True)
    if boot_code:
        with open(from_disk, "r+b") as disk:
            disk.write(b"\xeb\x63\x90\xfa")
    fd = os.open(from_disk, os.O_RDONLY)
    try:
        assert detect_boot_mode(fd) == expected
    finally:
        os.close(fd)
