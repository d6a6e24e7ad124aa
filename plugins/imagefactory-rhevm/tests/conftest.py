"""Shared pieces of the rhevm plugin's tests: synthetic disks, image records, build contexts,
the plugin's parameters, and the SDK's own connection to check what the fake engine holds.

Test modules get the helpers through fixtures (pytest's importlib mode does not let them import
this file). The engine is the session's fake oVirt engine with a real imageio daemon
(``tests/services/ovirt.py``); the plugin is configured as an operator would to reach it: its
API URL is in the plugin's ``endpoints`` and the build contexts' outbound policy allows
127.0.0.1.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imagefactory_rhevm as plugin
import ovirtsdk4
import pytest
from imagefactory_core.plugin import ImageKind, ImageView, OSSpec, PushResult, Template
from imagefactory_core.testing import RecordingBuildContext, make_build_context, plugin_parameters

from tests.services.ovirt_support.engine import Engine

MIB = 1024 * 1024
OUTBOUND_ALLOW = ("127.0.0.1",)
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
    """96 MiB sparse with 6 MiB of data in three places (one straddles a piece boundary)."""
    return write_sparse_disk(tmp_path_factory.mktemp("disk") / "base.raw", 96 * MIB, [
        (0, os.urandom(2 * MIB)),
        (63 * MIB, os.urandom(2 * MIB)),
        (90 * MIB, b"imagefactory rhevm test data\n" * (2 * MIB // 29)),
    ])


def make_template(name: str = "jeos", os_name: str = "Debian", version: str = "12") -> Template:
    return Template(xml="<template/>", name=name,
                    os=OSSpec(name=os_name, version=version, arch="x86_64", install_type="url",
                              install_url="http://deb.debian.org/debian"))


@pytest.fixture
def template() -> Template:
    return make_template()


@pytest.fixture
def template_for() -> Callable[..., Template]:
    """Make a template for an OS: ``template_for(os_name="Fedora", version="40")``."""
    return make_template


def new_id(kind: str) -> str:
    return f"test-{kind}-{os.getpid()}-{next(_ids)}"


def image_record(kind: ImageKind, body: Path, **fields: Any) -> ImageView:
    return ImageView(id=new_id(kind.singular), kind=kind, body_path=body, **fields)


@pytest.fixture
def new_context(tmp_path: Path) -> Callable[..., RecordingBuildContext]:
    """Make build contexts under this test's tmp_path, each with its own id, whose outbound
    policy allows 127.0.0.1 unless `outbound_allow` says otherwise."""
    def make(outbound_allow: tuple[str, ...] = OUTBOUND_ALLOW) -> RecordingBuildContext:
        image_id = new_id("image")
        return make_build_context(tmp_path / image_id, image_id, outbound_allow=outbound_allow)
    return make


def run_create_target(ctx: RecordingBuildContext, template: Template, disk: Path,
                      **request: Any) -> dict[str, Any]:
    """Run the create-target hook on `disk`; return the result's properties."""
    result = plugin.imagefactory_create_target_image(
        ctx=ctx, template=template, base_image=image_record(ImageKind.BASE, disk),
        source_disk=disk, target="rhevm", parameters=plugin_parameters(plugin, request))
    assert result is not None
    return result.properties


@pytest.fixture
def create_target() -> Callable[..., dict[str, Any]]:
    return run_create_target


@pytest.fixture(scope="session")
def qcow2_target(raw_disk: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageView:
    """The raw disk made into a qcow2 target image by the plugin."""
    ctx = make_build_context(tmp_path_factory.mktemp("qcow2"), "qcow2-target")
    properties = run_create_target(ctx, make_template(), raw_disk)
    return image_record(ImageKind.TARGET, ctx.body_path, base_image_id=new_id("base"),
                        target="rhevm", properties=properties)


@pytest.fixture(scope="session")
def raw_target(raw_disk: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageView:
    """The raw disk made into a raw target image by the plugin."""
    ctx = make_build_context(tmp_path_factory.mktemp("raw"), "raw-target")
    properties = run_create_target(ctx, make_template(), raw_disk, rhevm_image_format="raw")
    return image_record(ImageKind.TARGET, ctx.body_path, base_image_id=new_id("base"),
                        target="rhevm", properties=properties)


@pytest.fixture
def provider(ovirt_engine: Engine) -> dict[str, Any]:
    """The provider of a request for the fake engine, its CA pinned."""
    return {"api-url": ovirt_engine.api_url, "ca-file": str(ovirt_engine.ca_file)}


@pytest.fixture
def credentials(ovirt_engine: Engine) -> dict[str, Any]:
    """The seed's <provider_credentials><rhevm_credentials> as the core parses it."""
    return {"rhevm_credentials": {"username": ovirt_engine.username,
                                  "password": ovirt_engine.password}}


@pytest.fixture
def parameters(ovirt_engine: Engine) -> Callable[..., dict[str, Any]]:
    """The plugin's parameters for a request's `request` parameters, the plugin configured with
    the fake engine as its endpoint and `config` besides."""
    def resolve(config: dict[str, Any] | None = None, **request: Any) -> dict[str, Any]:
        return plugin_parameters(plugin, request,
                                 {"endpoints": [ovirt_engine.api_url], **(config or {})})
    return resolve


Push = Callable[..., PushResult]


@pytest.fixture
def push(parameters: Callable[..., dict[str, Any]], template: Template) -> Push:
    """Push as the core would: `config` is the plugin's configuration besides the endpoint,
    `request` the request's parameters."""
    def run(ctx: RecordingBuildContext, target: ImageView, provider: Any,
            credentials: dict[str, Any], config: dict[str, Any] | None = None,
            **request: Any) -> PushResult:
        return plugin.imagefactory_push_image(
            ctx=ctx, template=template, target_image=target, target="rhevm", provider=provider,
            credentials=credentials, parameters=parameters(config, **request))
    return run


@pytest.fixture
def admin(ovirt_engine: Engine) -> Iterator[ovirtsdk4.Connection]:
    """The SDK's own connection (its pycurl transport) to the fake engine, as the admin."""
    connection = ovirtsdk4.Connection(url=ovirt_engine.api_url, username=ovirt_engine.username,
                                      password=ovirt_engine.password,
                                      ca_file=str(ovirt_engine.ca_file))
    yield connection
    connection.close()


def same_content(a: Path, b: Path) -> bool:
    """Whether two disk images hold the same disk (qemu-img compare, formats detected)."""
    return subprocess.run(["qemu-img", "compare", "-q", str(a), str(b)]).returncode == 0


@pytest.fixture
def compare() -> Callable[[Path, Path], bool]:
    return same_content
