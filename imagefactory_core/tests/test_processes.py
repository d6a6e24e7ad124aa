"""Commands a killed service left running are found and ended at the next start."""

import subprocess
import threading
import time
from pathlib import Path

import pytest
from imagefactory_core.errors import CommandFailed
from imagefactory_core.processes import RECORD, kill_job_processes, kill_recorded_groups
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


def test_processes_a_command_left_behind_are_killed_with_the_job(tmp_path):
    """A background child whose shell exited, and a daemon in a session of its own: neither is
    in a recorded group any more, both carry the job's tag."""
    ctx = make_build_context(tmp_path)
    pid_files = [tmp_path / "in-group", tmp_path / "own-session"]
    ctx.run(["sh", "-c", 'sleep 300 >/dev/null 2>&1 & echo "$!" > "$0"', pid_files[0]])
    ctx.run(["sh", "-c", 'setsid sleep 300 >/dev/null 2>&1 & echo "$!" > "$0"', pid_files[1]])
    left = [(pid, _stat(pid)[1]) for pid in (int(path.read_text()) for path in pid_files)]
    assert all(_running(*process) for process in left)
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)  # no tag
    try:
        assert kill_recorded_groups(ctx.workdir) == 0  # the groups' leaders are gone
        assert kill_job_processes(ctx.workdir) == 2
        assert not [process for process in left if _running(*process)]
        assert bystander.poll() is None
        assert kill_job_processes(ctx.workdir) == 0
    finally:
        bystander.kill()
        bystander.wait()


def _stat(pid: int) -> tuple[str, str]:
    """A process's state letter and start time ("" if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return "", ""
    return fields[0], fields[19]


def _running(pid: int, start: str) -> bool:
    """Whether the process started at `start` still runs (not gone, not a zombie)."""
    state, now = _stat(pid)
    return now == start and state != "Z"
