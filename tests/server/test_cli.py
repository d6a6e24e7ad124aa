"""The `imagefactory` client verbs against a real, OAuth-protected server process."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.rest.conftest import SEED_CREDENTIALS, fake_tdl

from . import clirun
from .conftest import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def cli(server: ServerProcess, home: Path, *args: str, signed: bool = True,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """`imagefactory VERB --url … [--key … --secret …] ARGS…`, JSON output."""
    verb, *rest = args
    auth = clirun.signed(server) if signed else ["--url", clirun.service_url(server)]
    return clirun.run(home, verb, *auth, "--output", "json", *rest, check=check)


def test_build_push_inspect_download_and_delete(server, home, tmp_path):
    template = tmp_path / "fake.tdl"
    template.write_text(fake_tdl("cli"))
    base = json.loads(cli(server, home, "base-image", str(template), "--wait").stdout)
    assert base["status"] == "COMPLETE"
    target = json.loads(cli(server, home, "target-image", "fakecloud", "--base-image",
                            base["id"], "--wait").stdout)
    assert (target["status"], target["base_image_id"]) == ("COMPLETE", base["id"])

    credentials = tmp_path / "credentials.xml"
    credentials.write_text(SEED_CREDENTIALS)
    pushed = json.loads(cli(server, home, "provider-image", "fakecloud", "fake-1",
                            str(credentials), "--target-image", target["id"], "--wait").stdout)
    assert pushed["status"] == "COMPLETE"
    assert pushed["identifier_on_provider"].startswith("fake-")

    listing = cli(server, home, "images").stdout
    assert all(i in listing for i in (base["id"], target["id"], pushed["id"]))
    shown = json.loads(cli(server, home, "show", target["id"]).stdout)
    assert shown["target"] == "fakecloud"
    assert "wrote" in cli(server, home, "log", base["id"]).stdout
    plugins = json.loads(cli(server, home, "plugins").stdout)["plugins"]
    assert {"tests.plugins.fake_os", "tests.plugins.fake_cloud"} <= {p["id"] for p in plugins}

    output = tmp_path / "disk.raw"
    cli(server, home, "download", base["id"], str(output))
    body = server.state_dir / "storage" / f"{base['id']}.body"
    assert hashlib.sha256(output.read_bytes()).digest() == \
        hashlib.sha256(body.read_bytes()).digest()

    cli(server, home, "delete", pushed["id"], "--provider", "fake-1", "--credentials",
        str(credentials))
    assert server.wait_for(f"/provider_images/{pushed['id']}")["status"] == "DELETED"
    cli(server, home, "delete", target["id"])
    assert server.get(f"/target_images/{target['id']}")["status"] == "DELETED"


def test_unsigned_writes_fail_with_the_servers_message(server, home, tmp_path):
    template = tmp_path / "fake.tdl"
    template.write_text(fake_tdl("unsigned"))
    result = cli(server, home, "base-image", str(template), signed=False, check=False)
    assert result.returncode != 0
    assert "HTTP 401" in result.stderr
    assert "Authorization" in result.stderr or "OAuth" in result.stderr


def test_unknown_image_is_a_clear_error(server, home):
    result = cli(server, home, "show", "no-such-image", check=False)
    assert result.returncode != 0
    assert "no image no-such-image" in result.stderr


def test_a_kept_alive_connection_outlives_a_client_poll_interval(server: ServerProcess):
    """The CLI polls every 2 s on one connection; the server must not close it in between
    (gunicorn's default 2 s keep-alive did, and a poll now and then got ECONNRESET)."""
    port = int(server.url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        reader = conn.makefile("rb")
        for attempt in range(2):
            conn.sendall(b"GET /imagefactory HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Accept: application/json\r\n\r\n")
            status = reader.readline()
            assert status.startswith(b"HTTP/1.1 200"), (attempt, status)
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert b"imagefactory" in reader.read(length)
            if attempt == 0:
                time.sleep(2.5)
