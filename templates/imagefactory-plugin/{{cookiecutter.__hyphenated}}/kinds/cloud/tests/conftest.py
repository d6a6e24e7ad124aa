"""Disks, image records and parameters as the core hands them to the hooks."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.plugin import ImageKind, ImageView
from imagefactory_core.testing import RecordingBuildContext, make_build_context, plugin_parameters

import {{ cookiecutter.__underscored }} as plugin
from {{ cookiecutter.__underscored }} import settings

MIB = 1024 * 1024


@pytest.fixture
def raw_disk(tmp_path: Path) -> Path:
    """A sparse 16 MiB raw disk with data in two places, as a base image looks to qemu-img."""
    disk = tmp_path / "base.raw"
    with disk.open("wb") as body:
        body.truncate(16 * MIB)
        body.write(os.urandom(MIB))
        body.seek(9 * MIB)
        body.write(b"imagefactory test data\n" * 4096)
    return disk


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    """The directory the operator lets pushes use (plugin configuration)."""
    path = tmp_path / "provider"
    path.mkdir()
    return path


@pytest.fixture
def parameters(allowed: Path) -> Callable[..., dict[str, Any]]:
    """The plugin's resolved parameters for a request's `request` parameters, with `allowed`
    as the operator's directory."""
    def resolve(**request: Any) -> dict[str, Any]:
        return plugin_parameters(plugin, request, {settings.DIRECTORIES: [str(allowed)]})
    return resolve


@pytest.fixture
def new_context(tmp_path: Path) -> Callable[[str], RecordingBuildContext]:
    """A build context of its own for the image `image_id`."""
    return lambda image_id: make_build_context(tmp_path / image_id, image_id)


@pytest.fixture
def image() -> Callable[..., ImageView]:
    """An image record as a hook receives it."""
    def make(kind: ImageKind, body: Path, **fields: Any) -> ImageView:
        return ImageView(id=f"test-{kind.singular}", kind=kind, body_path=body, **fields)
    return make
