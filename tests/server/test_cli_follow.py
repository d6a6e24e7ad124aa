"""`--follow`: progress and the build log until COMPLETE (exit 0) or FAILED (exit 1), on a real
server; in a pipe, plain lines with no control codes even when colours are forced."""

from __future__ import annotations

import json
import selectors
import subprocess
import time
from pathlib import Path

import pytest

from tests.plugins.gate import Gate
from tests.rest.conftest import fake_tdl

from . import clirun
from .conftest import IMAGEFACTORY

pytestmark = pytest.mark.slow


def template(home: Path, name: str) -> str:
    path = home / f"{name}.tdl"
    path.write_text(fake_tdl(name))
    return str(path)


def test_follow_streams_the_log_and_exits_0_when_complete(server, tmp_path):
    env = clirun.environment(tmp_path, FORCE_COLOR="1", TERM="xterm-256color")
    result = clirun.run(tmp_path, "base-image", *clirun.signed(server),
                        template(tmp_path, "followed"), "--follow", env=env)
    lines = result.stdout.splitlines()
    image_id = next(line.split()[1] for line in lines if line.startswith("id:"))
    done = lines.index(f"base_image {image_id}: COMPLETE 100% Complete")
    assert any(line.endswith("== Building FakeOS 17 x86_64 with plugin tests.plugins.fake_os")
               for line in lines[:done])
    assert any(line.endswith("wrote 4194304 bytes") for line in lines[:done])
    assert [line.split() for line in lines[done + 1:] if line.startswith("status:")] == \
        [["status:", "COMPLETE", "(100%)"]]
    for stream in (result.stdout, result.stderr):
        assert not any(code in stream for code in clirun.CONTROL), repr(stream)


def test_a_failed_cascade_exits_1_with_its_cause_after_its_log(server, tmp_path):
    result = clirun.run(tmp_path, "target-image", *clirun.signed(server), "fakecloud",
                        "--template", template(tmp_path, "fail-me"), "--follow", check=False)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    base_id = next(line.split()[1].rstrip(":") for line in lines
                   if line.startswith("base_image ") and " FAILED " in line)
    reason = "FakeOS was asked to fail: template name is fail-me"
    assert any(line.endswith(f"FAILED: {reason}") for line in lines)  # the log's line
    assert f"imagefactory: base_image {base_id} FAILED: {reason}" in result.stderr
    target = next(line.split()[-1] for line in lines if line.startswith("id:"))
    assert server.get(f"/target_images/{target}")["status"] == "FAILED"

    # the log of a failed image, followed: printed at once, exit 1
    followed = clirun.run(tmp_path, "log", *clirun.signed(server), base_id, "--follow",
                          check=False)
    assert followed.returncode == 1
    assert reason in followed.stdout
    assert f"base_image {base_id} FAILED" in followed.stderr


def test_follow_with_json_output_keeps_stdout_for_the_json(server, tmp_path):
    result = clirun.run(tmp_path, "--output", "json", "base-image", *clirun.signed(server),
                        template(tmp_path, "scripted"), "--follow")
    image = json.loads(result.stdout)
    assert (image["_type"], image["status"], image["percent_complete"]) == \
        ("BaseImage", "COMPLETE", 100)
    assert "wrote 4194304 bytes" in result.stderr
    assert f"base_image {image['id']}: COMPLETE 100%" in result.stderr


def test_log_follow_streams_lines_while_the_build_runs(server, tmp_path):
    gate = Gate(tmp_path / "gate")
    image = server.post("/base_images", {"base_image": {
        "template": fake_tdl("held"), "parameters": gate.parameter()}})
    follower = None
    try:
        gate.wait_held(image["id"])
        follower = subprocess.Popen(
            [str(IMAGEFACTORY), "log", *clirun.signed(server), image["id"], "--follow"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=clirun.environment(tmp_path), cwd=tmp_path)
        assert follower.stdout is not None
        early = read_until(follower.stdout, b"== Pretending to install", timeout=30)
        assert server.get(f"/base_images/{image['id']}")["status"] == "BUILDING"
        gate.release_all()
        rest, errors = follower.communicate(timeout=60)
    finally:
        gate.release_all()
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.communicate()
        gate.kill_all()
    assert follower.returncode == 0, errors
    output = (early + rest).decode()
    assert "wrote 4194304 bytes" in output.split("== Pretending to install", 1)[1]
    assert ": BUILDING" not in output  # in a pipe, `log` prints the log, not the statuses
    assert not any(code in output + errors.decode() for code in clirun.CONTROL)


def read_until(stream: object, marker: bytes, timeout: float) -> bytes:
    """What `stream` (a pipe) gave until `marker` arrived; fails after `timeout` seconds."""
    received = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
        while marker not in received:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError(f"{marker!r} did not arrive within {timeout} s: "
                                     f"{received!r}")
            chunk = stream.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                raise AssertionError(f"the stream ended before {marker!r}: {received!r}")
            received += chunk
    return received


def test_a_log_the_client_may_not_read_is_said_and_the_status_still_followed(server, tmp_path):
    """With OAuth on, logs need a signed request and statuses do not: an unsigned follower
    sees the build to its end without its log, and is told why."""
    image = server.post("/base_images", {"base_image": {"template": fake_tdl("unsigned")}})
    result = clirun.run(tmp_path, "log", "--url", clirun.service_url(server), image["id"],
                        "--follow")
    assert result.stdout == ""
    assert "imagefactory: the build log could not be followed: HTTP 401" in result.stderr
    assert server.get(f"/base_images/{image['id']}")["status"] == "COMPLETE"
