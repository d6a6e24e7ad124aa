"""The original Image Factory's spellings, against a real server: its verbs, `--id`,
`--parameter`, `--file-parameter`, `--parameters FILE`, provider files and `@names`,
`--output json` before the verb; and the concise `show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.rest.conftest import SEED_CREDENTIALS, fake_tdl

from . import clirun
from .conftest import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the original's command lines name, in a directory of the module's."""
    home = tmp_path_factory.mktemp("cli-spellings-home")
    (home / "fake.tdl").write_text(fake_tdl("spelled"))
    (home / "parameters.json").write_text(json.dumps({"marker": "from-file",
                                                      "fake_build_seconds": 0}))
    (home / "token.txt").write_text("a-token-of-17-chars")
    (home / "credentials.xml").write_text(SEED_CREDENTIALS)
    (home / "credentials.json").write_text(json.dumps(
        {"fake_credentials": {"username": "bob", "password": "good"}}))
    (home / "region.json").write_text(json.dumps({"name": "fake-region", "zone": "b"}))
    (home / "ec2-us-east-1").write_text("fake-from-a-file\n")
    return home


def original(server: ServerProcess, home: Path, *args: str,
             check: bool = True) -> dict[str, Any]:
    """The original's form: global options first, then the verb (--wait after it)."""
    result = clirun.run(home, "--output", "json", *clirun.signed(server), *args, check=check)
    return json.loads(result.stdout) if check else {"stderr": result.stderr,
                                                    "returncode": result.returncode}


@pytest.fixture(scope="module")
def target(server: ServerProcess, files: Path) -> dict[str, Any]:
    base = original(server, files, "base_image", "fake.tdl", "--parameters", "parameters.json",
                    "--parameter", "marker", "from-flag", "--file-parameter", "fake_token",
                    "token.txt", "--wait")
    assert base["status"] == "COMPLETE", base["status_detail"]
    built = original(server, files, "target_image", "fake", "--id", base["id"], "--wait")
    assert (built["status"], built["base_image_id"]) == ("COMPLETE", base["id"])
    return built


def test_parameters_take_the_originals_order_of_precedence(server, target):
    base = server.get(f"/base_images/{target['base_image_id']}")
    assert base["parameters"]["marker"] == "from-flag"  # --parameter after --parameters
    assert base["parameters"]["fake_token"] != "a-token-of-17-chars"  # secret: not shown
    disk = (server.state_dir / "storage" / f"{base['id']}.body").read_bytes()
    assert b"marker: from-flag\n" in disk
    assert b"token-length: 19\n" in disk  # the file's text reached the plugin


@pytest.mark.parametrize(("provider", "expected"), [
    ("@fake-literal", "fake-literal"),  # the original's @name
    ("@ec2-us-east-1", "fake-from-a-file"),  # @PATH of an existing file: its text
    ("region.json", {"name": "fake-region", "zone": "b"}),  # the original's provider file
    ('{"name": "inline"}', {"name": "inline"}),
])
def test_provider_spellings(server, files, target, provider, expected):
    pushed = original(server, files, "provider_image", "fakecloud", provider,
                      "credentials.xml", "--id", target["id"], "--wait")
    assert (pushed["status"], pushed["provider"]) == ("COMPLETE", expected)


def test_delete_with_the_originals_options(server, files, target):
    pushed = original(server, files, "provider_image", "fake", "@fake-2", "credentials.json",
                      "--id", target["id"], "--wait")
    assert pushed["status"] == "COMPLETE"
    original(server, files, "delete", pushed["id"], "--provider", "@fake-2", "--credentials",
             "credentials.json", "--target", "fake")
    assert server.wait_for(f"/provider_images/{pushed['id']}")["status"] == "DELETED"


def test_show_is_a_summary_and_the_icicle_comes_on_request(server, files, target):
    base_id = target["base_image_id"]
    shown = clirun.run(files, "show", *clirun.signed(server), base_id).stdout
    rows = dict(line.split(":", 1) for line in shown.splitlines())
    assert rows["id"].strip() == base_id
    assert rows["kind"].strip() == "base_image"
    assert rows["status"].strip() == "COMPLETE (100%)"
    assert f"target_image {target['id']}" in shown  # children are listed
    assert "<icicle" not in shown and "<template" not in shown

    parent = clirun.run(files, "show", *clirun.signed(server), target["id"]).stdout
    assert f"parent:   base_image {base_id}" in parent
    icicle = clirun.run(files, "show", *clirun.signed(server), base_id, "--icicle").stdout
    assert icicle.lstrip().startswith("<icicle") and "httpd" in icicle

    raw = clirun.run(files, "--output", "json", "--raw", "show", *clirun.signed(server),
                     base_id).stdout
    assert raw.count("\n") == 1 and json.loads(raw)["icicle"].strip() == icicle.strip()


def test_listing_and_plugins(server, files, target):
    listed = clirun.run(files, "images", *clirun.signed(server), "target_image").stdout
    assert f"target_image    {target['id']}" in listed.splitlines()
    assert target["base_image_id"] not in listed
    plugins = clirun.run(files, "plugins", *clirun.signed(server)).stdout
    assert any(line.split()[:2] == ["tests.plugins.fake_os", "os"]
               for line in plugins.splitlines())
    one = clirun.run(files, "plugins", *clirun.signed(server), "--id",
                     "tests.plugins.fake_cloud").stdout
    assert "  fake_format (string): the target image's format" in one.splitlines()


def test_what_this_service_does_not_do_is_answered(server, files):
    snapshot = original(server, files, "provider_image", "fake", "@fake-1", "credentials.xml",
                        "--template", "fake.tdl", "--snapshot", check=False)
    assert snapshot["returncode"] == 1
    assert "HTTP 400" in snapshot["stderr"]
    assert "snapshot builds on a provider are not supported" in snapshot["stderr"]

    imported = clirun.run(files, "import_base_image", "disk.raw", check=False)
    assert imported.returncode == 2
    assert "import_base_image is not supported" in imported.stderr
    assert "base-image TEMPLATE" in imported.stderr

    bad = original(server, files, "base_image", "fake.tdl", "--parameters", "token.txt",
                   check=False)
    assert bad["returncode"] == 2
    assert "parameters file token.txt is not JSON" in bad["stderr"]
