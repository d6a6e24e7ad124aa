"""End-to-end fixtures: the real service (installed plugins, real Debian builds) driven
through its REST API, with ONE real bookworm base image built per test session and shared by
every end-to-end test (the package cache in `shared_cache_dir` keeps later sessions warm), and
one ec2 and one openstack-kvm target image of it, shared by the push tests and the boot tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import falcon.testing
import pytest
from imagefactory_core.api.app import ImageFactoryApp, create_app
from imagefactory_core.testing import make_config, wait_for_status

from tests.services.mirror import MirrorRelay

BOOT_MARKER = "IMAGEFACTORY-E2E-BOOTED"
MIRROR = os.environ.get("IMAGEFACTORY_TEST_MIRROR", "http://deb.debian.org/debian")
BUILD_TIMEOUT = 1500.0


def bookworm_tdl(name: str = "e2e-bookworm", commands: str = "", disk: str = "3G") -> str:
    """A bookworm template with a package, files of both kinds, and a command that arranges a
    boot-time console marker (a systemd unit writing to the serial console)."""
    unit = f"""[Unit]
Description=imagefactory end-to-end boot marker
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo {BOOT_MARKER} > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
"""
    return f"""<template>
  <name>{name}</name>
  <description>imagefactory end-to-end test image</description>
  <os>
    <name>Debian</name>
    <version>12</version>
    <arch>x86_64</arch>
    <rootpw>e2e-Secret-pw</rootpw>
    <install type='url'><url>{MIRROR}</url></install>
  </os>
  <disk><size>{disk}</size></disk>
  <packages>
    <package name='less'/>
  </packages>
  <files>
    <file name='/etc/systemd/system/e2e-marker.service'>{unit}</file>
    <file name='/etc/e2e-base64.txt' type='base64'>aW1hZ2VmYWN0b3J5Cg==</file>
  </files>
  <commands>
    <command name='enable-marker'>systemctl enable e2e-marker.service</command>
    {commands}
  </commands>
</template>"""


@pytest.fixture(scope="session")
def e2e_app(tmp_path_factory: pytest.TempPathFactory,
            shared_cache_dir: Path) -> Iterator[ImageFactoryApp]:
    root = tmp_path_factory.mktemp("e2e")
    # Any client may name the mirror: the tests prove a per-request mirror is used. The mirror
    # resolves to a non-public address in this workplace: the build sandbox may reach it.
    # The cloud services run on 127.0.0.1 on ports known only once they start: clients may
    # name them (`endpoints`), and the service may connect to loopback for a request.
    config = make_config(root, cache_path=str(shared_cache_dir),
                         max_concurrent_local_sessions=2,
                         operator_parameters={"*": ["mirror", "apt_proxy", "endpoints"]},
                         sandbox_egress_allow=[urlsplit(MIRROR).hostname],
                         outbound_allow=["127.0.0.1"])
    app = create_app(config)
    yield app
    app.services.engine.shutdown(timeout=60)


@pytest.fixture(scope="session")
def e2e_client(e2e_app: ImageFactoryApp) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(e2e_app)


def build(client: falcon.testing.TestClient, collection: str, body: dict[str, Any],
          path: str | None = None, timeout: float = BUILD_TIMEOUT) -> dict[str, Any]:
    """POST an image and wait until it settles; return the final image."""
    singular = collection[:-1]
    result = client.simulate_post(path or f"/imagefactory/{collection}",
                                  json={singular: body})
    assert result.status_code == 202, result.text
    image = result.json[singular]
    return wait_for_status(client, f"/imagefactory/{collection}/{image['id']}",
                           timeout=timeout)


@pytest.fixture(scope="session")
def bookworm_base(e2e_client: falcon.testing.TestClient) -> dict[str, Any]:
    """The session's one real bookworm base image, built through the REST API."""
    image = build(e2e_client, "base_images", {"template": bookworm_tdl()})
    assert image["status"] == "COMPLETE", image["status_detail"]
    return image


@pytest.fixture(scope="session")
def ec2_target(e2e_client: falcon.testing.TestClient,
               bookworm_base: dict[str, Any]) -> dict[str, Any]:
    """The session's ec2 target image (raw) of the bookworm base image."""
    image = build(e2e_client, "target_images", {"target": "ec2"},
                  path=f"/imagefactory/base_images/{bookworm_base['id']}/target_images")
    assert image["status"] == "COMPLETE", image["status_detail"]
    return image


@pytest.fixture(scope="session")
def relayed_mirror() -> Iterator[MirrorRelay]:
    """The mirror the openstack target's request names: a relay that records what apt asked."""
    with MirrorRelay(MIRROR) as relay:
        yield relay


@pytest.fixture(scope="session")
def openstack_target(e2e_client: falcon.testing.TestClient, bookworm_base: dict[str, Any],
                     relayed_mirror: MirrorRelay) -> dict[str, Any]:
    """The session's openstack-kvm target image (qcow2), made with a per-request mirror."""
    image = build(e2e_client, "target_images",
                  {"target": "openstack-kvm", "base_image_id": bookworm_base["id"],
                   "parameters": {"mirror": relayed_mirror.url}})
    assert image["status"] == "COMPLETE", image["status_detail"]
    return image
