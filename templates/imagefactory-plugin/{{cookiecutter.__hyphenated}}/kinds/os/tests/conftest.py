"""Templates, builds and a reader for what a built image holds.

The builds are real: the host's mkfs.ext4 in imagefactory-core's build sandbox, which needs
what the service needs (root, with subordinate ids for root in /etc/subuid and /etc/subgid).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.plugin import BuildResult, parse_template
from imagefactory_core.testing import RecordingBuildContext, make_build_context, plugin_parameters

import {{ cookiecutter.__underscored }} as plugin
from {{ cookiecutter.__underscored }}.settings import OS_NAME


def tdl(body: str = "", version: str = "1", name: str = "test-image") -> str:
    """A template for this plugin's OS, with `body` (``<files>``, ``<disk>`` …) added."""
    return f"""<template>
  <name>{name}</name>
  <description>a test image</description>
  <os>
    <name>{OS_NAME}</name>
    <version>{version}</version>
    <arch>x86_64</arch>
    <install type='url'><url>http://example.org/unused/</url></install>
  </os>
  {body}
</template>"""


@pytest.fixture
def template_text() -> Callable[..., str]:
    return tdl


@pytest.fixture
def build(tmp_path: Path) -> Callable[..., tuple[RecordingBuildContext, BuildResult]]:
    """Run the build hook on a template's text, with the parameters the core would resolve
    from `request` and the plugin's configuration `config`."""
    def run(text: str, config: dict[str, Any] | None = None,
            **request: Any) -> tuple[RecordingBuildContext, BuildResult]:
        ctx = make_build_context(tmp_path / "build")
        result = plugin.imagefactory_create_base_image(
            ctx=ctx, template=parse_template(text),
            parameters=plugin_parameters(plugin, request, config))
        return ctx, result
    return run


@pytest.fixture
def image_file() -> Callable[[Path, str], bytes]:
    """The content of a file in an ext4 image, read by debugfs (no mount needed)."""
    def read(disk: Path, path: str) -> bytes:
        return subprocess.run(["debugfs", "-R", f"cat {path}", str(disk)],
                              capture_output=True, check=True).stdout
    return read
