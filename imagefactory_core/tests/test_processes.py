"""Commands a killed service left running are found and ended at the next start."""

import subprocess
import threading
import time

import pytest
from imagefactory_core.errors import CommandFailed
from imagefactory_core.processes import RECORD, kill_recorded_groups
from imagefactory_core.testing import make_build_context


def test_recorded_process_group_is_killed_with_its_children(tmp_path):
    ctx = make_build_context(tmp_path)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            ctx.run(["sh", "-c", "sleep 300 & sleep 300; wait"])
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while not (ctx.workdir / RECORD).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pgid = int((ctx.workdir / RECORD).read_text().split()[0])
    time.sleep(0.3)
    assert len(_living_members(pgid)) >= 2  # the shell and its background sleep

    assert kill_recorded_groups(ctx.workdir) == 1
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome[0], CommandFailed)
    time.sleep(0.2)
    assert _living_members(pgid) == []


def _living_members(pgid: int) -> list[str]:
    """Members of the group that are not zombies (an orphan's zombie waits for init)."""
    listing = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True,
                             text=True).stdout
    return [line.split()[0] for line in listing.splitlines() if "Z" not in line.split()[1]]


def test_a_recycled_pid_is_left_alone(tmp_path):
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        (tmp_path / RECORD).write_text(f"{bystander.pid} 1\n")  # start time does not match
        assert kill_recorded_groups(tmp_path) == 0
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize("content", ["", None])
def test_nothing_recorded_kills_nothing(tmp_path, content):
    if content is not None:
        (tmp_path / RECORD).write_text(content)
    assert kill_recorded_groups(tmp_path) == 0
