"""create_target_image converts with qemu-img and reports the format it finds in the file."""

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.plugin import Template
from imagefactory_core.testing import ParameterError, RecordingBuildContext

pytestmark = pytest.mark.slow

NewContext = Callable[..., RecordingBuildContext]
CreateTarget = Callable[..., dict[str, Any]]


def qemu_info(path: Path) -> dict[str, Any]:
    out = subprocess.run(["qemu-img", "info", "--output=json", path], check=True,
                         capture_output=True, text=True).stdout
    return dict(json.loads(out))


def same_content(a: Path, b: Path) -> bool:
    return subprocess.run(["qemu-img", "compare", "-q", a, b]).returncode == 0


def test_default_is_qcow2_detected_from_the_file(new_context: NewContext,
                                                 create_target: CreateTarget,
                                                 template: Template, raw_disk: Path) -> None:
    ctx = new_context()
    properties = create_target(ctx, template, raw_disk)
    assert properties == {"disk_format": "qcow2", "image_format": "qcow2",
                          "virtual_size": raw_disk.stat().st_size}
    assert qemu_info(ctx.body_path)["format"] == "qcow2"
    assert same_content(raw_disk, ctx.body_path)
    assert any("qemu-img info --output=json" in line for line in ctx.lines)
    assert [percent for percent, _ in ctx.reports] == [0, 100]


def test_compressed_qcow2_is_smaller(new_context: NewContext, create_target: CreateTarget,
                                     template: Template, raw_disk: Path) -> None:
    plain, packed = new_context(), new_context()
    create_target(plain, template, raw_disk)
    properties = create_target(packed, template, raw_disk,
                               openstack_image_format="qcow2-compressed")
    assert properties["disk_format"] == "qcow2"
    assert properties["image_format"] == "qcow2-compressed"
    assert same_content(raw_disk, packed.body_path)
    # The 4 MiB of repeated text shrink to almost nothing; the 6 MiB of random data do not.
    assert packed.body_path.stat().st_size < plain.body_path.stat().st_size - 3 * 2**20


def test_plugin_config_can_make_compression_the_default(new_context: NewContext,
                                                        create_target: CreateTarget,
                                                        template: Template,
                                                        raw_disk: Path) -> None:
    config = {"openstack_image_format": "qcow2-compressed"}
    assert create_target(new_context(), template, raw_disk,
                         config)["image_format"] == "qcow2-compressed"
    assert create_target(new_context(), template, raw_disk, config,
                         openstack_image_format="raw")["disk_format"] == "raw"


def test_raw_when_asked(new_context: NewContext, create_target: CreateTarget,
                        template: Template, raw_disk: Path) -> None:
    ctx = new_context()
    properties = create_target(ctx, template, raw_disk, openstack_image_format="raw")
    assert properties["disk_format"] == "raw"
    assert ctx.body_path.read_bytes() == raw_disk.read_bytes()
    # Still sparse: qemu-img skips the zeros.
    assert ctx.body_path.stat().st_blocks * 512 < 32 * 2**20


def test_unknown_format_is_refused(new_context: NewContext, create_target: CreateTarget,
                                   template: Template, raw_disk: Path) -> None:
    with pytest.raises(ParameterError, match="cannot use 'vmdk': expected a string, one of "
                                             "qcow2, qcow2-compressed, raw"):
        create_target(new_context(), template, raw_disk, openstack_image_format="vmdk")
