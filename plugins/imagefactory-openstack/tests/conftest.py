"""Shared pieces of the openstack plugin's tests: synthetic disks, records, real connections.

Test modules get the helpers through fixtures (pytest's importlib mode does not let them import
this file). The disks are sparse raw files with a few MiB of data in places, some random (it
does not compress) and some repetitive (compression shows), as a base image looks to qemu-img.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imagefactory_openstack as plugin
import openstack
import openstack.connection
import pytest
from imagefactory_core.plugin import ImageKind, ImageView, OSSpec, Template
from imagefactory_core.testing import RecordingBuildContext, make_build_context, plugin_parameters

MIB = 1024 * 1024
_ids = itertools.count(1)


def write_sparse_disk(path: Path, size: int, extents: list[tuple[int, bytes]]) -> Path:
    """A sparse raw disk of `size` bytes with `extents` (offset, data) written into it."""
    with path.open("wb") as disk:
        disk.truncate(size)
        for offset, data in extents:
            disk.seek(offset)
            disk.write(data)
    return path


@pytest.fixture(scope="session")
def raw_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """256 MiB sparse, 10 MiB of data: random, repetitive, and random again near the end."""
    pattern = b"imagefactory openstack test data\n" * (4 * MIB // 33)
    return write_sparse_disk(tmp_path_factory.mktemp("disk") / "base.raw", 256 * MIB, [
        (1 * MIB, os.urandom(4 * MIB)),
        (64 * MIB, pattern),
        (200 * MIB, os.urandom(2 * MIB)),
    ])


def debian_template() -> Template:
    return Template(xml="<template/>", name="jeos",
                    os=OSSpec(name="Debian", version="12", arch="x86_64", install_type="url",
                              install_url="http://deb.debian.org/debian"))


@pytest.fixture
def template() -> Template:
    return debian_template()


def new_id(kind: str) -> str:
    return f"test-{kind}-{os.getpid()}-{next(_ids)}"


def image_record(kind: ImageKind, body: Path, **fields: Any) -> ImageView:
    """A COMPLETE image of `kind` whose body is `body`, as the core hands it to a hook."""
    return ImageView(id=new_id(kind.singular), kind=kind, body_path=body, **fields)


@pytest.fixture
def target_image() -> Callable[..., ImageView]:
    """Make the target image record of a body (and its properties), as a push receives it."""
    def make(body: Path, properties: dict[str, Any] | None = None) -> ImageView:
        return image_record(ImageKind.TARGET, body, base_image_id=new_id("base"),
                            target="openstack-kvm", properties=properties or {})
    return make


@pytest.fixture
def provider_image() -> Callable[[str | None], ImageView]:
    """Make the provider image record of a Glance image id, as a delete receives it."""
    return lambda identifier: image_record(ImageKind.PROVIDER, Path("/nonexistent"),
                                           target="openstack-kvm",
                                           identifier_on_provider=identifier)


@pytest.fixture
def new_context(tmp_path: Path) -> Callable[..., RecordingBuildContext]:
    """Make build contexts under this test's tmp_path, each with its own id and workdir."""
    def make() -> RecordingBuildContext:
        image_id = new_id("image")
        return make_build_context(tmp_path / image_id, image_id)
    return make


def run_create_target(ctx: RecordingBuildContext, template: Template, disk: Path,
                      config: dict[str, Any] | None = None, **request: Any) -> dict[str, Any]:
    """Run the create-target hook on `disk` with the parameters the core would resolve from
    `request` and the plugin's `config`; return the result's properties."""
    result = plugin.imagefactory_create_target_image(
        ctx=ctx, template=template, base_image=image_record(ImageKind.BASE, disk),
        source_disk=disk, target="openstack-kvm",
        parameters=plugin_parameters(plugin, request, config))
    assert result is not None
    return result.properties


@pytest.fixture
def create_target() -> Callable[..., dict[str, Any]]:
    return run_create_target


@pytest.fixture(scope="session")
def qcow2_target(raw_disk: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The raw disk converted by the plugin to qcow2, and the properties it recorded."""
    root = tmp_path_factory.mktemp("qcow2")
    ctx = make_build_context(root, "qcow2-target")
    properties = run_create_target(ctx, debian_template(), raw_disk)
    return ctx.body_path, properties


@pytest.fixture(scope="session")
def qcow2_disk(qcow2_target: tuple[Path, dict[str, Any]]) -> Path:
    """The qcow2 body most pushes send (as a record without properties: hashed while sent)."""
    return qcow2_target[0]


@pytest.fixture(scope="session")
def admin(openstack_cloud: dict[str, Any]) -> Iterator[openstack.connection.Connection]:
    """The Keystone admin's own openstacksdk connection, to check what the plugin did."""
    keys = ("auth_url", "username", "password", "project_name", "user_domain_name",
            "project_domain_name", "region_name")
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, connect_retries=3,
                             **{key: openstack_cloud[key] for key in keys})
    yield conn
    conn.close()


@pytest.fixture
def xml_credentials(openstack_cloud: dict[str, Any]) -> dict[str, Any]:
    """The seed's <provider_credentials><openstack_credentials> as the core parses it."""
    return {"openstack_credentials": {
        "username": openstack_cloud["username"],
        "password": openstack_cloud["password"],
        "tenant": openstack_cloud["project_name"],
        "auth_url": openstack_cloud["auth_url"],
        "strategy": "keystone",
    }}


@pytest.fixture
def digest() -> Callable[[Path, str], str]:
    """The hex digest of a file with a hashlib algorithm."""
    def file_digest(path: Path, algorithm: str) -> str:
        with path.open("rb") as stream:
            return hashlib.file_digest(stream, algorithm).hexdigest()
    return file_digest
