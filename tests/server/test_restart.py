"""A real server killed or stopped during a build, then started again on the same state
directory: interrupted builds are re-queued or failed with a reason, nothing hangs in
NEW/PENDING/BUILDING, and finished images are intact."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from typing import Any

import pytest

from tests.rest.conftest import fake_tdl

from .conftest import IMAGEFACTORY, REPO, SETTLED, ServerProcess, sleepers, wait_until

pytestmark = pytest.mark.slow

ACTIVE = ("NEW", "PENDING", "BUILDING")
GRACEFUL_TIMEOUT = 60  # gunicorn's graceful_timeout in server.py


def base_body(name: str, **parameters: Any) -> dict[str, Any]:
    return {"base_image": {"template": fake_tdl(name), "parameters": parameters}}


def all_images(server: ServerProcess) -> dict[str, dict[str, Any]]:
    """Every image the server lists, by id, as GET shows it."""
    found = {}
    for collection in ("base_images", "target_images", "provider_images"):
        answer = server.request("GET", f"/{collection}")
        assert answer.status_code == 200, answer.text
        for entry in answer.json()[collection]:
            image_id = next(iter(entry.values()))["id"]
            found[image_id] = server.get(f"/{collection}/{image_id}")
    return found


def body_digest(server: ServerProcess, path: str) -> str:
    answer = server.request("GET", f"{path}/raw_image")
    assert answer.status_code == 200, answer.text
    return hashlib.sha256(answer.content).hexdigest()


def test_sigkill_during_a_build_then_restart_requeues_it_and_loses_nothing(servers):
    seconds = 6.125
    servers.sleeps.append(seconds)
    server = servers().start()

    done = server.post("/base_images", base_body("kept"))
    kept = f"/base_images/{done['id']}"
    assert server.wait_for(kept)["status"] == "COMPLETE"
    kept_target = server.post(f"{kept}/target_images", {"target_image": {"target": "fakecloud"}})
    kept_target_path = f"/target_images/{kept_target['id']}"
    assert server.wait_for(kept_target_path)["status"] == "COMPLETE"
    digests = {kept: body_digest(server, kept),
               kept_target_path: body_digest(server, kept_target_path)}

    slow = server.post("/base_images", base_body("interrupted", fake_build_seconds=seconds))
    slow_path = f"/base_images/{slow['id']}"
    server.wait_for(slow_path, ("BUILDING",))
    wait_until(lambda: sleepers(seconds), 10, "the build's command to start")
    child = server.post(f"{slow_path}/target_images", {"target_image": {"target": "fakecloud"}})
    child_path = f"/target_images/{child['id']}"
    assert server.get(child_path)["status"] == "PENDING"

    server.kill_group()
    assert server.proc is not None and server.proc.returncode == -signal.SIGKILL

    server.start()
    rebuilt = server.wait_for(slow_path, timeout=seconds + 30)
    assert rebuilt["status"] in ("COMPLETE", "FAILED")
    if rebuilt["status"] == "FAILED":
        assert rebuilt["status_detail"]["error"], rebuilt
    else:
        log = server.request("GET", f"{slow_path}/log").text
        assert "re-queued" in log
        assert body_digest(server, slow_path)
    assert server.wait_for(child_path, timeout=30)["status"] == rebuilt["status"]

    images = all_images(server)
    assert {done["id"], kept_target["id"], slow["id"], child["id"]} <= set(images)
    stuck = {i: m["status"] for i, m in images.items() if m["status"] in ACTIVE}
    assert not stuck, stuck
    assert all(m["status"] in SETTLED for m in images.values())
    for path, digest in digests.items():
        assert server.get(path)["status"] == "COMPLETE"
        assert body_digest(server, path) == digest


def test_sigterm_during_a_build_stops_in_time_and_records_it_failed(servers):
    seconds = 30.375
    servers.sleeps.append(seconds)
    server = servers(max_concurrent_local_sessions=1).start()

    running = server.post("/base_images", base_body("running", fake_build_seconds=seconds))
    running_path = f"/base_images/{running['id']}"
    server.wait_for(running_path, ("BUILDING",))
    wait_until(lambda: sleepers(seconds), 10, "the build's command to start")
    queued = server.post("/base_images", base_body("queued"))
    queued_path = f"/base_images/{queued['id']}"
    assert server.get(queued_path)["status"] == "PENDING"

    elapsed = server.signal(signal.SIGTERM, timeout=GRACEFUL_TIMEOUT + 10)
    assert elapsed < 20, f"the server took {elapsed:.1f} s to stop"
    assert server.proc is not None and server.proc.returncode == 0, server.log()[-3000:]
    wait_until(lambda: not sleepers(seconds), 10, "the build's command to be killed")
    assert "cancelling running builds" in server.log()

    server.start()
    stopped = server.get(running_path)
    assert stopped["status"] == "FAILED"
    assert "service was stopped" in stopped["status_detail"]["error"]
    started = time.monotonic()
    assert server.wait_for(queued_path, timeout=30)["status"] == "COMPLETE"
    assert time.monotonic() - started < 30
    assert not [m for m in all_images(server).values() if m["status"] in ACTIVE]
    assert server.get(running_path)["status"] == "FAILED"


def test_a_second_serve_on_the_same_state_directory_exits_naming_the_holder(servers):
    server = servers().start()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("IMAGEFACTORY_CONFIG", None)
    second = subprocess.run([str(IMAGEFACTORY), "serve", "--config", str(server.config_file),
                             "--port", "9"], capture_output=True, text=True, timeout=60,
                            env=env, cwd=REPO, check=False)
    assert second.returncode == 2
    assert "is in use by imagefactory pid" in second.stderr
    assert server.request("GET", "").status_code == 200
