"""Shared pieces of the openstack plugin's tests: synthetic disks, records, real connections.

Test modules get the helpers through fixtures (pytest's importlib mode does not let them import
this file). The disks are sparse raw files with a few MiB of data in places, some random (it
does not compress) and some repetitive (compression shows), as a base image looks to qemu-img.

The plugin is configured as an operator would to reach the local services: their URLs are the
plugin's ``endpoints`` (fixture ``parameters``), and the build contexts' outbound policy allows
127.0.0.1 (``outbound_allow``).
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import itertools
import os
import socket
import struct
import threading
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
    """Make build contexts under this test's tmp_path, each with its own id and workdir, whose
    outbound policy allows 127.0.0.1 unless `outbound_allow` says otherwise."""
    def make(outbound_allow: tuple[str, ...] = OUTBOUND_ALLOW) -> RecordingBuildContext:
        image_id = new_id("image")
        return make_build_context(tmp_path / image_id, image_id, outbound_allow=outbound_allow)
    return make


@pytest.fixture(scope="session")
def operator_endpoints() -> list[str]:
    """The URLs of the local Keystone and Glance services started so far."""
    return []


@pytest.fixture(scope="session")
def openstack_cloud(openstack_cloud: dict[str, Any],
                    operator_endpoints: list[str]) -> dict[str, Any]:
    operator_endpoints += [openstack_cloud["auth_url"], openstack_cloud["glance_url"]]
    return openstack_cloud


@pytest.fixture(scope="session")
def glance_noauth(glance_noauth: dict[str, Any], operator_endpoints: list[str]) -> dict[str, Any]:
    operator_endpoints.append(glance_noauth["glance_url"])
    return glance_noauth


@pytest.fixture
def parameters(operator_endpoints: list[str]) -> Callable[..., dict[str, Any]]:
    """The plugin's parameters for a request's `request` parameters, the plugin configured
    with the local services as its `endpoints` and `config` besides."""
    def resolve(config: dict[str, Any] | None = None, **request: Any) -> dict[str, Any]:
        return plugin_parameters(plugin, request,
                                 {"endpoints": list(operator_endpoints), **(config or {})})
    return resolve


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


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
               "proxy-connection", "te", "trailer", "upgrade"}


class ResettingRelay(http.server.ThreadingHTTPServer):
    """An HTTP/1.1 relay on 127.0.0.1 in front of a real service that resets the client's
    connection, without an answer, on the first request for `path` with `method`: after
    passing it on (the service acted on it) when `forward`, else before. `seen` lists every
    request that arrived, as ``(method, path)``."""

    daemon_threads = True

    def __init__(self, upstream: tuple[str, int], method: str, path: str, *, forward: bool):
        self.upstream = upstream
        self.trap: tuple[str, str] | None = (method, path)
        self.forward = forward
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _RelayHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def sprung(self, method: str, path: str) -> bool:
        """Whether this request is the one to break (only the first that matches)."""
        with self.lock:
            self.seen.append((method, path))
            if self.trap == (method, path):
                self.trap = None
                return True
            return False


class _RelayHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ResettingRelay

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows the tests' own output."""

    def _relay(self) -> None:
        assert "chunked" not in self.headers.get("Transfer-Encoding", ""), "not supported here"
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reset = self.server.sprung(self.command, self.path)
        if reset and not self.server.forward:
            self._reset()
            return
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers={
                name: value for name, value in self.headers.items()
                if name.lower() not in _HOP_BY_HOP})
            answer = upstream.getresponse()
            payload = answer.read()
        finally:
            upstream.close()
        if reset:
            self._reset()
            return
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        """Close with SO_LINGER 0: the client gets a TCP reset instead of an answer."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _relay


@pytest.fixture
def resetting_relay() -> Iterator[Callable[..., ResettingRelay]]:
    """Start `ResettingRelay`s (upstream, method, path, forward=…); stopped after the test."""
    started: list[ResettingRelay] = []

    def start(upstream: tuple[str, int], method: str, path: str, *,
              forward: bool) -> ResettingRelay:
        relay = ResettingRelay(upstream, method, path, forward=forward)
        threading.Thread(target=relay.serve_forever, daemon=True).start()
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.shutdown()
        relay.server_close()
