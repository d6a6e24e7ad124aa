"""The CLI's local mode on the real Debian plugin: `imagefactory --local base_image` builds a
bootable image with no daemon running, as the original command did."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.server import clirun

from .conftest import MIRROR, bookworm_tdl

pytestmark = pytest.mark.slow


def test_local_mode_builds_a_real_debian_image(tmp_path: Path, shared_cache_dir: Path):
    (tmp_path / "imagefactory.conf").write_text(json.dumps({
        "sandbox_egress_allow": [urlsplit(MIRROR).hostname]}))
    (tmp_path / "web.tdl").write_text(bookworm_tdl("cli-local"))
    local = ("--local", "--config", "imagefactory.conf", "--cache-dir", str(shared_cache_dir))

    built = clirun.run(tmp_path, *local, "base_image", "web.tdl", timeout=1500)
    lines = built.stdout.splitlines()
    image_id = next(line.split()[1] for line in lines if line.startswith("id:"))
    assert f"base_image {image_id}: COMPLETE 100% Complete" in lines, built.stdout

    icicle = clirun.run(tmp_path, *local, "show", image_id, "--icicle").stdout
    assert 'name="less-' in icicle
    clirun.run(tmp_path, *local, "download", image_id, "disk.raw")
    disk = tmp_path / "disk.raw"
    assert disk.stat().st_size == 3 * 1024**3
    partitions = subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True,
                                text=True, check=True)
    assert len(json.loads(partitions.stdout)["partitiontable"]["partitions"]) >= 2
