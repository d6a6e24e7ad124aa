"""`BuildContext.run`: a command's status and output, its time limit and cancellation."""

import os
import resource
import threading
import time
from pathlib import Path

import pytest
from imagefactory_core.errors import BuildCancelled, CommandFailed
from imagefactory_core.testing import make_build_context

from tests.procfs import running


def test_a_command_s_output_is_logged_and_its_failure_raised_with_the_tail(tmp_path: Path):
    ctx = make_build_context(tmp_path / "ctx")
    done = ctx.run(["sh", "-c", "echo one; echo two >&2"])
    assert done.returncode == 0
    assert [line for line in ctx.lines if line in ("one", "two")] == ["one", "two"]
    assert ctx.run(["echo", "kept"], capture=True).stdout == "kept\n"
    with pytest.raises(CommandFailed) as failed:
        ctx.run(["sh", "-c", "echo last words; exit 3"])
    assert failed.value.returncode == 3
    assert "last words" in failed.value.output_tail
    assert ctx.run(["sh", "-c", "exit 4"], check=False).returncode == 4


def test_a_command_over_its_time_limit_is_ended_with_its_children(tmp_path: Path):
    ctx = make_build_context(tmp_path / "ctx")
    pid_file = tmp_path / "child.pid"
    with pytest.raises(CommandFailed) as failed:
        ctx.run(["sh", "-c", 'sleep 300 & echo "$!" > "$0"; wait', pid_file], timeout=1)
    assert "timed out after 1 s" in failed.value.output_tail
    assert not running(int(pid_file.read_text()))


def test_a_cancelled_build_ends_its_running_command(tmp_path: Path):
    ctx = make_build_context(tmp_path / "ctx")
    pid_file = tmp_path / "child.pid"
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            ctx.run(["sh", "-c", 'sleep 300 & echo "$!" > "$0"; wait', pid_file])
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.05)
    ctx.cancel_event.set()
    thread.join(15)
    assert not thread.is_alive()
    assert isinstance(outcome[0], BuildCancelled)
    assert not running(int(pid_file.read_text()))


def test_commands_run_in_a_process_with_over_a_thousand_open_descriptors(tmp_path: Path):
    """A busy service holds many descriptors: waiting for a command must not rely on select(),
    which takes none numbered 1024 or above."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.fail(f"the hard limit of open files here is {hard}; the test needs 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        assert max(held) >= 1024
        ctx = make_build_context(tmp_path / "ctx")
        assert ctx.run(["echo", "fine"], capture=True).stdout == "fine\n"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
