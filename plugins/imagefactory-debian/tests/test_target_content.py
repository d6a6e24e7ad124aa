"""A cloud plugin's TargetContent applied to a copy of the session's image."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imagefactory_debian
import pytest
from debian_plugin_testing import MIRROR_HOSTS, Build, loop_devices_of, mounted_root, mounts_under
from imagefactory_core.plugin import TargetContent, parse_icicle
from imagefactory_core.testing import make_build_context, plugin_parameters
from imagefactory_debian import imagefactory_apply_target_content

pytestmark = pytest.mark.slow


def test_target_content_is_applied_to_the_disk_in_place(image: Build, tmp_path: Path):
    disk = tmp_path / "disk.raw"
    subprocess.run(["cp", "--sparse=always", image.disk, disk], check=True)
    ctx = make_build_context(tmp_path, image_id="target", egress_allow=MIRROR_HOSTS)
    content = TargetContent(packages=("bc",), files={"/etc/target.conf": b"target=yes\n"},
                            commands=("bc --version | head -n 1 > /etc/target-command.txt",))
    result = imagefactory_apply_target_content(ctx=ctx, template=image.template,
                                               content=content, disk=disk,
                                               parameters=plugin_parameters(imagefactory_debian))
    assert result is not None
    names = [name for name, _ in parse_icicle(result.icicle)]
    assert any(name.startswith("bc-") for name in names)
    assert any(name.startswith("less-") for name in names)  # the base image's packages stay
    with mounted_root(disk) as root:
        assert (root / "etc/target.conf").read_text() == "target=yes\n"
        assert (root / "etc/target-command.txt").read_text().startswith("bc ")
        assert (root / "etc/hostname").read_text() == "imagefactory-debian-test\n"
        assert not [p for p in (root / "var/lib/apt/lists").rglob("*") if p.is_file()]
    assert mounts_under(tmp_path) == []
    assert loop_devices_of(tmp_path) == []


def test_content_without_packages_keeps_the_icicle(image: Build, tmp_path: Path):
    disk = tmp_path / "disk.raw"
    subprocess.run(["cp", "--sparse=always", image.disk, disk], check=True)
    ctx = make_build_context(tmp_path, image_id="target", egress_allow=MIRROR_HOSTS)
    result = imagefactory_apply_target_content(
        ctx=ctx, template=image.template, content=TargetContent(files={"/etc/x": b"x"}),
        disk=disk, parameters=plugin_parameters(imagefactory_debian))
    assert result is None
