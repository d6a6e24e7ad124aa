"""create_target_image converts with qemu-img and records the format it finds in the file."""

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.plugin import BuildError, Template
from imagefactory_core.testing import ParameterError, RecordingBuildContext, make_build_context
from imagefactory_rhevm import convert

NewContext = Callable[..., RecordingBuildContext]
CreateTarget = Callable[..., dict[str, Any]]


def qemu_info(path: Path) -> dict[str, Any]:
    out = subprocess.run(["qemu-img", "info", "--output=json", path], check=True,
                         capture_output=True, text=True).stdout
    return dict(json.loads(out))


def test_default_is_qcow2_compat_1_1(new_context: NewContext, create_target: CreateTarget,
                                     template: Template, raw_disk: Path,
                                     compare: Callable[[Path, Path], bool]) -> None:
    ctx = new_context()
    properties = create_target(ctx, template, raw_disk)
    assert properties == {"disk_format": "qcow2", "image_format": "qcow2",
                          "virtual_size": raw_disk.stat().st_size, "qcow2_compat": "1.1"}
    info = qemu_info(ctx.body_path)
    assert info["format"] == "qcow2"
    assert info["format-specific"]["data"]["compat"] == "1.1"
    assert compare(raw_disk, ctx.body_path)
    assert [percent for percent, _ in ctx.reports] == [0, 100]


def test_raw_when_asked(new_context: NewContext, create_target: CreateTarget,
                        template: Template, raw_disk: Path) -> None:
    ctx = new_context()
    properties = create_target(ctx, template, raw_disk, rhevm_image_format="raw")
    assert properties == {"disk_format": "raw", "image_format": "raw",
                          "virtual_size": raw_disk.stat().st_size}
    assert ctx.body_path.read_bytes() == raw_disk.read_bytes()
    # Still sparse: qemu-img skips the zeros.
    assert ctx.body_path.stat().st_blocks * 512 < 16 * 2**20


def test_another_format_is_refused_before_any_work(new_context: NewContext,
                                                   create_target: CreateTarget,
                                                   template: Template, raw_disk: Path) -> None:
    with pytest.raises(ParameterError, match="cannot use 'vmdk': expected a string, one of "
                                             "qcow2, raw"):
        create_target(new_context(), template, raw_disk, rhevm_image_format="vmdk")


def test_a_body_ovirt_cannot_keep_is_refused(tmp_path: Path, raw_disk: Path) -> None:
    ctx = make_build_context(tmp_path, "inspect")
    vmdk = tmp_path / "disk.vmdk"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", raw_disk, vmdk],
                   check=True)
    with pytest.raises(BuildError, match="the target image is vmdk; oVirt disks are qcow2 or "
                                         "raw"):
        convert.describe(convert.inspect(ctx, vmdk), vmdk)
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-F", "vmdk", "-b", vmdk, overlay],
                   check=True, capture_output=True)
    with pytest.raises(BuildError, match="a qcow2 with a backing file"):
        convert.describe(convert.inspect(ctx, overlay), overlay)
