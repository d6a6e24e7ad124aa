"""Local mode: `--local` builds without a daemon, with the store and workers in the command's
own process (the test-only plugins, named by the configuration as a server's are)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.plugins.gate import Gate
from tests.rest.conftest import SEED_CREDENTIALS, fake_tdl

from . import clirun
from .conftest import IMAGEFACTORY, ServerProcess, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "imagefactory.conf").write_text(json.dumps({
        "plugin_modules": ["tests.plugins.fake_os", "tests.plugins.fake_cloud",
                           "tests.plugins.fake_package"],
        "disabled_plugins": sorted({e.name for e in entry_points(group="imagefactory.plugins")}),
        # the fake cloud outlives each command's process, as a real one would
        "plugins": {"tests.plugins.fake_cloud": {"fake_cloud_file": str(tmp_path / "cloud")}},
        "outbound_allow": ["127.0.0.1"],  # the callback receivers of these tests
    }))
    (tmp_path / "fake.tdl").write_text(fake_tdl("local"))
    (tmp_path / "fail-me.tdl").write_text(fake_tdl("fail-me"))
    (tmp_path / "credentials.xml").write_text(SEED_CREDENTIALS)
    return tmp_path


LOCAL = ("--local", "--config", "imagefactory.conf")


def local(home: Path, *args: str, check: bool = True) -> tuple[int, str, str]:
    result = clirun.run(home, *LOCAL, *args, check=check)
    return result.returncode, result.stdout, result.stderr


def test_local_mode_builds_pushes_and_keeps_its_images(home):
    _, out, _ = local(home, "base_image", "fake.tdl", "--parameter", "marker", "here")
    lines = out.splitlines()
    base_id = next(line.split()[1] for line in lines if line.startswith("id:"))
    assert f"base_image {base_id}: COMPLETE 100% Complete" in lines  # followed, in a pipe
    assert any(line.endswith("wrote 4194304 bytes") for line in lines)
    state = home / "data" / "imagefactory"  # $XDG_DATA_HOME/imagefactory: the default
    disk = (state / "storage" / f"{base_id}.body").read_bytes()
    assert disk.startswith(b"FAKEOS local 17\n") and b"marker: here\n" in disk
    assert (home / "cache" / "imagefactory").is_dir()

    _, out, _ = local(home, "--output", "json", "provider_image", "fake", "@fake-1",
                      "credentials.xml", "--base-image", base_id)
    pushed = json.loads(out)
    assert pushed["status"] == "COMPLETE" and pushed["identifier_on_provider"].startswith("fake-")

    # a later command finds what earlier ones built: the state outlives the process
    _, out, _ = local(home, "images")
    assert f"base_image      {base_id}" in out.splitlines()
    assert f"provider_image  {pushed['id']}" in out.splitlines()
    _, out, _ = local(home, "log", base_id)
    assert "wrote 4194304 bytes" in out
    _, out, _ = local(home, "--output", "json", "delete", pushed["id"], "--provider",
                      "@fake-1", "--credentials", "credentials.xml")
    assert json.loads(out)["status"] == "DELETED"  # the command saw its delete through
    assert json.loads((home / "cloud").read_text()) == {}


def test_a_failed_local_build_exits_1_saying_why(home):
    status, out, err = local(home, "--state-dir", str(home / "elsewhere"), "target_image",
                             "fake", "--template", "fail-me.tdl", check=False)
    assert status == 1
    assert "FakeOS was asked to fail: template name is fail-me" in err
    assert "target_image" in out and "FAILED" in out
    assert (home / "elsewhere" / "imagefactory.db").is_file()
    assert not (home / "data").exists()


def test_local_mode_leaves_a_running_services_state_alone(tmp_path, home):
    server = ServerProcess(tmp_path / "server")
    server.root.mkdir()
    try:
        server.start()
        status, _, err = local(home, "--state-dir", str(server.state_dir), "images",
                               check=False)
    finally:
        server.cleanup()
    assert status == 2
    # serve's own pid: it claims the directory before it answers, for its build worker
    assert server.proc is not None
    assert (f"local mode: state directory {server.state_dir} is in use by imagefactory pid "
            f"{server.proc.pid} ") in err


def test_delete_sends_its_parameters_callbacks(home, receiver):
    _, out, _ = local(home, "--output", "json", "base_image", "fake.tdl")
    base = json.loads(out)
    _, out, _ = local(home, "--output", "json", "delete", base["id"],
                      "--parameter", "callbacks", receiver.url("/deleted"))
    assert json.loads(out)["status"] == "DELETED"
    # the command drains its callbacks before it exits
    assert receiver.statuses("/deleted")[-1] == "DELETED"


def test_a_killed_commands_build_is_failed_by_the_next_not_resumed(home, gate):
    command = subprocess.Popen(
        [str(IMAGEFACTORY), *LOCAL, "base_image", "fake.tdl", *gate_option(gate)],
        cwd=home, env=clirun.environment(home), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        (held,) = wait_until(gate.running, 60, "the local build to be held")
    finally:
        os.killpg(command.pid, signal.SIGKILL)
        command.wait()
    gate.kill_all()  # what a crash of the whole session would leave: nothing running
    image_id = held.rsplit(".", 1)[0]

    _, out, _ = local(home, "--output", "json", "show", image_id)
    image = json.loads(out)
    assert image["status"] == "FAILED"
    assert image["status_detail"]["error"].startswith(
        "the command that started it stopped before it finished")
    assert [r.event for r in gate.records()] == ["start"]  # the next command never ran it


def gate_option(gate: Gate) -> list[str]:
    (name, value), = gate.parameter().items()
    return ["--parameter", name, value]


def test_a_target_image_made_from_a_target_image(home):
    _, out, _ = local(home, "--output", "json", "target_image", "fake", "--template", "fake.tdl")
    source = json.loads(out)
    _, out, _ = local(home, "--output", "json", "target-image", "fakepackage",
                      "--target-image", source["id"], "--parameter", "package_label", "cli")
    made = json.loads(out)
    assert made["status"] == "COMPLETE"
    assert (made["target"], made["target_image_id"]) == ("fakepackage", source["id"])
    assert made["base_image_id"] == source["base_image_id"]
