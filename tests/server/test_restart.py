"""A real server killed or stopped during a build, a push or a delete, then started again on
the same state directory: recovery does exactly what docs/architecture.md says — base and
target builds resume from scratch and COMPLETE, a push (its credentials were never stored)
ends FAILED and a provider delete DELETEFAILED, each saying what to do — the commands the
killed server orphaned are ended, and finished images are intact.

Builds, pushes and deletes are held at a gate (`tests.plugins.gate`) until the test lets them
go: the test kills the server while they are provably running, and sees only its own
processes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from typing import Any

import pytest
from imagefactory_core.builds.engine import DELETE_INTERRUPTED, PUSH_INTERRUPTED, RESTARTED

from tests.plugins.gate import Gate
from tests.rest.conftest import SEED_CREDENTIALS, fake_tdl

from .conftest import IMAGEFACTORY, REPO, SETTLED, ServerProcess, wait_until

pytestmark = pytest.mark.slow

ACTIVE = ("NEW", "PENDING", "BUILDING")
GRACEFUL_TIMEOUT = 60  # gunicorn's graceful_timeout in server.py
CLOUD_PLUGIN = "tests.plugins.fake_cloud"


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


def log_lines(server: ServerProcess, path: str) -> list[str]:
    answer = server.request("GET", f"{path}/log")
    assert answer.status_code == 200, answer.text
    return answer.text.splitlines()


def wait_held_again(gate: Gate, image_id: str, step: str, before: int) -> int:
    """The pid of a new hold of `image_id`'s `step` (the re-run after a restart)."""
    return int(wait_until(lambda: (pid := gate.pid(image_id, step)) != before and pid,
                          60, f"{image_id} {step} to be held again"))


def test_sigkill_during_a_build_and_a_push_then_restart_resumes_exactly(servers, gate):
    server = servers().start()

    done = server.post("/base_images", base_body("kept"))
    kept = f"/base_images/{done['id']}"
    assert server.wait_for(kept)["status"] == "COMPLETE"
    kept_target = server.post(f"{kept}/target_images", {"target_image": {"target": "fakecloud"}})
    kept_target_path = f"/target_images/{kept_target['id']}"
    assert server.wait_for(kept_target_path)["status"] == "COMPLETE"
    digests = {kept: body_digest(server, kept),
               kept_target_path: body_digest(server, kept_target_path)}

    slow = server.post("/base_images", base_body("interrupted", **gate.parameter()))
    slow_path = f"/base_images/{slow['id']}"
    orphan = gate.wait_held(slow["id"])
    child = server.post(f"{slow_path}/target_images", {"target_image": {"target": "fakecloud"}})
    child_path = f"/target_images/{child['id']}"
    assert server.get(child_path)["status"] == "PENDING"
    pushing = server.post(f"{kept_target_path}/provider_images", {"provider_image": {
        "provider": "p1", "credentials": SEED_CREDENTIALS, "parameters": gate.parameter()}})
    pushing_path = f"/provider_images/{pushing['id']}"
    orphan_push = gate.wait_held(pushing["id"], "push")

    server.kill_group()
    assert server.proc is not None and server.proc.returncode == -signal.SIGKILL
    assert gate.alive(orphan) and gate.alive(orphan_push)  # outside the server's group

    server.start()
    rerun = wait_held_again(gate, slow["id"], "build", orphan)
    wait_until(lambda: not gate.alive(orphan) and not gate.alive(orphan_push), 30,
               "recovery to end what the killed server left running")
    assert server.get(slow_path)["status"] == "BUILDING"
    assert server.get(child_path)["status"] == "PENDING"
    gate.release(slow["id"])
    rebuilt = server.wait_for(slow_path)
    assert rebuilt["status"] == "COMPLETE", rebuilt["status_detail"]
    assert rebuilt["percent_complete"] == 100
    assert any(line.endswith(f"== {RESTARTED}") for line in log_lines(server, slow_path))
    body = server.request("GET", f"{slow_path}/raw_image").content
    assert body.startswith(b"FAKEOS interrupted 17\n")
    assert not gate.alive(rerun)
    built = server.wait_for(child_path)
    assert built["status"] == "COMPLETE", built["status_detail"]

    push = server.get(pushing_path)
    assert push["status"] == "FAILED"
    assert push["status_detail"]["error"] == PUSH_INTERRUPTED
    assert push["identifier_on_provider"] is None
    assert log_lines(server, pushing_path)[-2].endswith(f"FAILED: {PUSH_INTERRUPTED}")

    images = all_images(server)
    assert {done["id"], kept_target["id"], slow["id"], child["id"], pushing["id"]} \
        <= set(images)
    assert {i: m["status"] for i, m in images.items()} == {
        done["id"]: "COMPLETE", kept_target["id"]: "COMPLETE", slow["id"]: "COMPLETE",
        child["id"]: "COMPLETE", pushing["id"]: "FAILED"}
    for path, digest in digests.items():
        assert server.get(path)["status"] == "COMPLETE"
        assert body_digest(server, path) == digest


def test_sigterm_during_a_build_stops_in_time_and_records_it_failed(servers, gate):
    server = servers(max_concurrent_local_sessions=1).start()

    running = server.post("/base_images", base_body("running", **gate.parameter()))
    running_path = f"/base_images/{running['id']}"
    pid = gate.wait_held(running["id"])
    queued = server.post("/base_images", base_body("queued"))
    queued_path = f"/base_images/{queued['id']}"
    assert server.get(queued_path)["status"] == "PENDING"

    # the held build never ends by itself: waiting for it would take the graceful timeout
    elapsed = server.signal(signal.SIGTERM, timeout=GRACEFUL_TIMEOUT + 10)
    assert elapsed < GRACEFUL_TIMEOUT, f"the server took {elapsed:.1f} s to stop"
    assert server.proc is not None and server.proc.returncode == 0, server.log()[-3000:]
    assert not gate.alive(pid)
    assert "cancelling running builds" in server.log()

    server.start()
    stopped = server.get(running_path)
    assert stopped["status"] == "FAILED"
    assert "service was stopped" in stopped["status_detail"]["error"]
    assert server.wait_for(queued_path)["status"] == "COMPLETE"
    assert not [m for m in all_images(server).values() if m["status"] in ACTIVE]
    assert server.get(running_path)["status"] == "FAILED"


def test_sigkill_during_a_provider_delete_then_restart_is_deletefailed_and_deletable(
        servers, gate, tmp_path):
    """The cloud (a file the fake cloud plugin keeps) outlives the killed server: the image
    is still there after the restart, DELETEFAILED says to DELETE again with credentials,
    and doing so removes it."""
    cloud_file = tmp_path / "cloud.json"
    server = servers(plugins={CLOUD_PLUGIN: {"fake_cloud_file": str(cloud_file)}}).start()
    target = server.post("/target_images", {"target_image": {
        "template": fake_tdl("to-delete"), "target": "fakecloud"}})
    target_path = f"/target_images/{target['id']}"
    assert server.wait_for(target_path)["status"] == "COMPLETE"
    pushed = server.post(f"{target_path}/provider_images", {"provider_image": {
        "provider": "p1", "credentials": SEED_CREDENTIALS, "parameters": gate.parameter()}})
    path = f"/provider_images/{pushed['id']}"
    gate.wait_held(pushed["id"], "push")
    gate.release(pushed["id"], "push")
    cloud_id = server.wait_for(path)["identifier_on_provider"]
    assert cloud_id in json.loads(cloud_file.read_text())

    delete = {"provider_image": {"provider": "p1", "credentials": SEED_CREDENTIALS}}
    assert server.request("DELETE", path, json=delete).status_code == 204
    orphan = gate.wait_held(pushed["id"], "delete")
    assert server.get(path)["status"] == "DELETING"
    server.kill_group()

    server.start()
    interrupted = server.wait_for(path)
    assert interrupted["status"] == "DELETEFAILED"
    assert interrupted["status_detail"]["error"] == DELETE_INTERRUPTED
    assert interrupted["identifier_on_provider"] == cloud_id
    lines = log_lines(server, path)
    assert lines[-2].endswith(f"FAILED: {DELETE_INTERRUPTED}"), lines
    assert lines[-1].endswith("== DELETEFAILED"), lines
    wait_until(lambda: not gate.alive(orphan), 30, "recovery to end the orphaned delete")
    assert cloud_id in json.loads(cloud_file.read_text())

    assert server.request("DELETE", path, json=delete).status_code == 204
    wait_held_again(gate, pushed["id"], "delete", orphan)
    gate.release(pushed["id"], "delete")
    assert server.wait_for(path)["status"] == "DELETED"
    assert cloud_id not in json.loads(cloud_file.read_text())
    assert {m["status"] for m in all_images(server).values()} <= set(SETTLED)


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
