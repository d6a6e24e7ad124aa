"""The escape suite's fixtures: the real service (installed plugins, real Debian builds in the
build sandbox) driven through its REST API, as an attacker would drive it, and host-side
witnesses (a canary file, a listener on 127.0.0.1, a host process) checked afterwards.

Builds share the session's package and JEOS caches, so each costs seconds, not minutes.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import falcon.testing
import pytest
from imagefactory_core.api.app import ImageFactoryApp, create_app
from imagefactory_core.testing import make_config, wait_for_status

from tests.e2e.conftest import MIRROR

BUILD_TIMEOUT = 900.0


def tdl(name: str, commands: str = "", *, precommands: str = "", packages: str = "",
        files: str = "", install_url: str = MIRROR) -> str:
    """A small bookworm template carrying the attack in its commands, files or URLs."""
    return f"""<template>
  <name>{name}</name>
  <os><name>Debian</name><version>12</version><arch>x86_64</arch>
      <install type='url'><url>{install_url}</url></install></os>
  <disk><size>2G</size></disk>
  <precommands>{precommands}</precommands>
  <packages>{packages}</packages>
  <files>{files}</files>
  <commands>{commands}</commands>
</template>"""


def command(name: str, body: str) -> str:
    escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"<command name='{name}'>{escaped}</command>"


def make_app(root: Path, cache: Path, **settings: Any) -> ImageFactoryApp:
    config = make_config(root, cache_path=str(cache),
                         sandbox_egress_allow=[urlsplit(MIRROR).hostname], **settings)
    return create_app(config)


@pytest.fixture(scope="session")
def attacked(tmp_path_factory: pytest.TempPathFactory,
             shared_cache_dir: Path) -> Iterator[falcon.testing.TestClient]:
    """The service under attack, on the operator's default sandbox settings."""
    app = make_app(tmp_path_factory.mktemp("security"), shared_cache_dir)
    yield falcon.testing.TestClient(app)
    app.services.engine.shutdown(timeout=60)


def build(client: falcon.testing.TestClient, template: str,
          parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST a base image and wait until it settles; return the final image."""
    result = client.simulate_post("/imagefactory/base_images", json={"base_image": {
        "template": template, "parameters": parameters or {}}})
    assert result.status_code == 202, result.text
    image_id = result.json["base_image"]["id"]
    return wait_for_status(client, f"/imagefactory/base_images/{image_id}",
                           timeout=BUILD_TIMEOUT)


def build_log(client: falcon.testing.TestClient, image: dict[str, Any]) -> str:
    return client.simulate_get(f"/imagefactory/base_images/{image['id']}/log").text


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection it accepts."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            client.sendall(b"HTTP/1.0 200 OK\r\n\r\nhost-secret\n")
            client.close()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    started = Listener()
    yield started
    started.close()


@pytest.fixture
def host_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process of the host's that a template must not be able to signal or trace."""
    process = subprocess.Popen(["sleep", "600"])
    yield process
    process.kill()
    process.wait()


ROOT_OFFSET = 256 * 1024 * 1024  # the debian plugin's root partition (docs/plugins/debian.md)


def image_file(client: falcon.testing.TestClient, image: dict[str, Any],
               path: str) -> tuple[int, str]:
    """(owner uid, content) of `path` in a finished image's root file system, read with
    debugfs from the image body (nothing is mounted)."""
    body = client.app.services.store.body_path(image["id"])
    source = f"{body}?offset={ROOT_OFFSET}"
    stat = subprocess.run(["debugfs", "-R", f"stat {path}", source], capture_output=True,
                          text=True, check=True).stdout
    content = subprocess.run(["debugfs", "-R", f"cat {path}", source], capture_output=True,
                             text=True, check=True).stdout
    owner = next(line for line in stat.splitlines() if line.startswith("User:"))
    return int(owner.split()[1]), content
