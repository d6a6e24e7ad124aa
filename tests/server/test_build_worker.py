"""The build worker `serve` starts beside its API (`build_workers: embedded`): one command, two
processes, so a crash of either spares the other's work.

Builds are held at a gate (`tests.plugins.gate`) while the test kills one process: the API's
gunicorn worker (the process that answers requests), the build worker, or `serve` itself (the
arbiter, alone: its children survive it, as after an OOM kill of one process)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import requests
from imagefactory_core.builds.engine import RESTARTED
from imagefactory_core.errors import InvalidRequest
from imagefactory_core.statelock import StateLock

from tests.plugins.gate import Gate
from tests.procfs import running
from tests.rest.conftest import fake_tdl

from .conftest import ServerProcess, api_worker, build_worker, wait_until

pytestmark = pytest.mark.slow


def base_body(name: str, gate: Gate) -> dict[str, Any]:
    return {"base_image": {"template": fake_tdl(name), "parameters": gate.parameter()}}


def answers(server: ServerProcess) -> bool:
    try:
        return server.request("GET", "", timeout=2).status_code == 200
    except requests.ConnectionError:  # the connection the killed process held
        return False


def test_a_crash_of_the_api_process_loses_no_build(servers, gate):
    server: ServerProcess = servers().start()
    held = server.post("/base_images", base_body("outlives-the-api", gate))
    path = f"/base_images/{held['id']}"
    pid = gate.wait_held(held["id"])
    worker = build_worker(server)

    os.kill(api_worker(server), signal.SIGKILL)
    # gunicorn starts another API worker; the build never noticed
    wait_until(lambda: answers(server), 30, "a new API worker to answer")
    assert gate.alive(pid) and build_worker(server) == worker
    assert server.get(path)["status"] == "BUILDING"

    gate.release(held["id"])
    done = server.wait_for(path)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert not any(RESTARTED in line for line in server.request(
        "GET", f"{path}/log").text.splitlines())


def test_a_crashing_build_worker_is_restarted_and_its_build_runs_again(servers, gate):
    server: ServerProcess = servers().start()
    held = server.post("/base_images", base_body("worker-crash", gate))
    path = f"/base_images/{held['id']}"
    first_pid = gate.wait_held(held["id"])
    first_worker = build_worker(server)

    os.kill(first_worker, signal.SIGKILL)
    assert server.request("GET", path).status_code == 200  # the API does not notice
    # until the next worker starts, serve keeps the state directory claimed
    with pytest.raises(InvalidRequest, match=f"in use by imagefactory pid {server.proc.pid} "):
        StateLock(server.state_dir)
    rerun = int(wait_until(lambda: (p := gate.pid(held["id"])) != first_pid and p, 60,
                           "the restarted worker to run the build again"))
    assert build_worker(server) != first_worker
    assert not gate.alive(first_pid)  # what the dead worker left running was ended
    gate.release(held["id"])
    done = server.wait_for(path)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert any(line.endswith(f"== {RESTARTED}") for line in server.request(
        "GET", f"{path}/log").text.splitlines())
    assert not gate.alive(rerun)
    assert "the build worker (pid" in server.log() and "exited" in server.log()


def test_a_killed_serve_leaves_its_worker_to_finish_the_running_build(servers, gate):
    server: ServerProcess = servers().start()
    held = server.post("/base_images", base_body("outlives-serve", gate))
    path = f"/base_images/{held['id']}"
    pid = gate.wait_held(held["id"])
    worker, api = build_worker(server), api_worker(server)
    assert server.proc is not None

    server.proc.send_signal(signal.SIGKILL)  # the arbiter alone
    server.proc.wait(10)
    wait_until(lambda: not running(api), 30, "gunicorn's API worker to follow its arbiter")
    assert running(worker) and gate.alive(pid)
    gate.release(held["id"])
    wait_until(lambda: not running(worker), 60,
               "the orphaned worker to finish its build and stop")

    server.start()
    done = server.wait_for(path)
    assert done["status"] == "COMPLETE", done["status_detail"]
    assert server.request("GET", f"{path}/raw_image").content.startswith(b"FAKEOS outlives")
