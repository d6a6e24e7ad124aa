"""Faults injected into one real `imagefactory serve` process, one after another on the same
state directory: crashes (SIGKILL) during a build, an upload and a delete, a full disk, plugins
that raise, hang or leak processes, a callback receiver that never answers.

After each, `Rig.check` proves the service answers, every image is final (interrupted base and
target builds are re-queued and must complete), the SQLite database passes its integrity check,
and no work files, mounts, loop devices or processes are left behind.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from imagefactory_core.builds.engine import RESTARTED

from tests.receivers import DeadReceiver, Receiver
from tests.server.conftest import wait_until

from . import processes
from .conftest import CALLBACK_TIMEOUT, CREDENTIALS, FINAL, Rig

pytestmark = pytest.mark.slow

STOP_TIMEOUT = 70  # gunicorn's graceful_timeout (60 s) and some


def crash_and_restart(rig: Rig, command: processes.Process) -> None:
    """SIGKILL the service, start it again, and wait for its build worker's recovery to end
    the `command` the killed one left running."""
    rig.server.kill_group()
    assert rig.server.proc is not None and rig.server.proc.returncode == -signal.SIGKILL
    rig.server.start()
    wait_until(lambda: not processes.alive(command), 30,
               "recovery to end what the killed service left running")


def test_sigkill_during_a_build_requeues_it_and_its_waiting_child(rig: Rig) -> None:
    base = rig.base("crash-during-build", fault="hang-once")
    command = rig.command(base, "hang")
    target = rig.post(f"{base}/target_images", {"target_image": {"target": "faultcloud"}})
    assert rig.server.get(target)["status"] == "PENDING"

    crash_and_restart(rig, command)

    images = rig.check()
    assert images[base]["status"] == "COMPLETE", images[base]["status_detail"]
    assert images[target]["status"] == "COMPLETE", images[target]["status_detail"]
    assert RESTARTED in rig.log(base)


def test_sigkill_during_an_upload_fails_the_push_and_keeps_the_target(rig: Rig) -> None:
    target = rig.target("crash-during-push")
    push = rig.push(target, fault_push_seconds=600)
    command = rig.command(push, "push")

    crash_and_restart(rig, command)

    images = rig.check()
    assert images[push]["status"] == "FAILED"
    assert "POST the provider image again" in images[push]["status_detail"]["error"]
    assert images[target]["status"] == "COMPLETE"
    again = rig.push(target)
    assert rig.server.wait_for(again, FINAL)["status"] == "COMPLETE"
    rig.check()


def test_sigkill_during_a_provider_delete_then_a_new_delete_finishes_it(rig: Rig) -> None:
    target = rig.target("crash-during-delete")
    push = rig.push(target, fault_delete_seconds=600)
    assert rig.server.wait_for(push, FINAL)["status"] == "COMPLETE"
    delete = {"provider_image": {"provider": "fault-region", "credentials": CREDENTIALS}}
    assert rig.server.request("DELETE", push, json=delete).status_code == 204
    command = rig.command(push, "delete")

    crash_and_restart(rig, command)

    images = rig.check()
    assert images[push]["status"] == "DELETEFAILED"
    assert "DELETE again with credentials" in images[push]["status_detail"]["error"]
    assert rig.server.request("DELETE", push, json=delete).status_code == 204
    assert rig.server.wait_for(push, FINAL)["status"] == "DELETED"
    base = f"/base_images/{rig.server.get(target)['base_image_id']}"
    for path in (target, base):  # and their bodies go
        assert rig.server.request("DELETE", path).status_code == 204
        assert rig.server.wait_for(path, FINAL)["status"] == "DELETED"
    rig.check()


@pytest.mark.parametrize("fault", ["fill", "fill-work"])
def test_a_full_disk_fails_the_build_and_frees_the_space(rig: Rig, fault: str) -> None:
    full = rig.base("fills-the-disk", fault=fault)
    image = rig.server.wait_for(full, FINAL)
    assert image["status"] == "FAILED"
    assert "No space left on device" in image["status_detail"]["error"]
    assert "FAILED: internal error: OSError" in rig.log(full)  # the log says why
    rig.check()  # its partial body is gone
    after = rig.base("after-the-full-disk")
    assert rig.server.wait_for(after, FINAL)["status"] == "COMPLETE"
    rig.check()


def test_a_plugin_that_raises_fails_the_build_with_its_error(rig: Rig) -> None:
    path = rig.base("raises", fault="raise")
    image = rig.server.wait_for(path, FINAL)
    assert image["status"] == "FAILED"
    assert "RuntimeError: FaultOS injected a plugin bug" in image["status_detail"]["error"]
    log = rig.log(path)
    assert "Traceback" in log and "FAILED: internal error: RuntimeError" in log
    rig.check()


def test_a_plugin_that_raises_with_filesystems_mounted_leaves_none(rig: Rig) -> None:
    path = rig.base("raises-mounted", fault="mount")
    image = rig.server.wait_for(path, FINAL)
    assert image["status"] == "FAILED"
    assert "raised with filesystems mounted" in image["status_detail"]["error"]
    assert "$ mount -t tmpfs" in rig.log(path)  # both were mounted
    rig.check()  # no mount, no loop device


def test_a_hung_build_is_ended_by_a_delete_and_builds_go_on_beside_it(rig: Rig) -> None:
    hung = rig.base("hangs-until-deleted", fault="hang")
    command = rig.command(hung, "hang")
    beside = rig.base("beside-the-hang")
    assert rig.server.wait_for(beside, FINAL)["status"] == "COMPLETE"

    assert rig.server.request("DELETE", hung).status_code == 204

    assert rig.server.wait_for(hung, FINAL)["status"] == "DELETED"
    assert not processes.alive(command)
    rig.check()


def test_a_hung_build_does_not_keep_the_operator_from_stopping_the_service(rig: Rig) -> None:
    hung = rig.base("hangs-until-stopped", fault="hang")
    command = rig.command(hung, "hang")

    rig.server.signal(signal.SIGTERM, STOP_TIMEOUT)

    assert rig.server.proc is not None and rig.server.proc.returncode == 0
    assert not processes.alive(command)
    rig.server.start()
    images = rig.check()
    assert images[hung]["status"] == "FAILED"
    assert "service was stopped" in images[hung]["status_detail"]["error"]


def test_a_build_deaf_to_cancellation_is_deleted_by_the_next_start(rig: Rig) -> None:
    deaf = rig.base("deaf-to-cancellation", fault="hang-deaf")
    command = rig.command(deaf, "hang-deaf")

    assert rig.server.request("DELETE", deaf).status_code == 204

    assert rig.server.get(deaf)["status"] == "DELETING"  # resumable: the next start finishes it
    beside = rig.base("beside-the-deaf-build")  # the other build slot still works
    assert rig.server.wait_for(beside, FINAL)["status"] == "COMPLETE"
    crash_and_restart(rig, command)  # SIGTERM would wait out the graceful timeout for it
    assert rig.check()[deaf]["status"] == "DELETED"


def test_processes_a_build_leaves_behind_end_with_it(rig: Rig) -> None:
    path = rig.base("leaks", fault="leak")
    assert rig.server.wait_for(path, FINAL)["status"] == "COMPLETE"
    pid_files = Path(rig.server.settings["cache_path"]) / "fault-pids"
    image_id = path.rsplit("/", 1)[1]
    leaked = {int((pid_files / f"{image_id}-{what}").read_text()): what
              for what in ("leak-group", "leak-session")}
    alive = [p for p in processes.tagged(rig.token) if p.pid in leaked]
    assert not alive, [(leaked[p.pid], p) for p in alive]
    rig.check()


def test_a_callback_receiver_that_never_answers_delays_no_one(rig: Rig) -> None:
    dead, good = DeadReceiver(), Receiver()
    try:
        path = rig.base("called-back", callbacks=[
            f"http://127.0.0.1:{dead.port}/never", good.url("/good")])
        assert rig.server.wait_for(path, FINAL)["status"] == "COMPLETE"
        # before the dead receiver's first PUT could even time out
        good.wait_for("COMPLETE", timeout=CALLBACK_TIMEOUT)
        rig.check()
        rig.server.signal(signal.SIGTERM, STOP_TIMEOUT)  # pending deliveries do not hold it
        assert rig.server.proc is not None and rig.server.proc.returncode == 0
        rig.server.start()
        rig.check()
    finally:
        dead.close()
        good.close()
