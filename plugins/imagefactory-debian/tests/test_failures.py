"""Failing and cancelled builds: the error says why, and nothing is left behind."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from debian_plugin_testing import (
    Build,
    build,
    loop_devices_of,
    mounts_under,
    processes_in,
    tdl,
)
from imagefactory_core.plugin import BuildCancelled, BuildError
from imagefactory_core.testing import RecordingBuildContext

pytestmark = pytest.mark.slow


def assert_nothing_left(root: Path, cache: Path | None = None) -> None:
    assert mounts_under(root) == []
    assert loop_devices_of(root) == []
    assert processes_in(root) == []
    assert not (root / "work" / "debian").exists()
    assert not list(root.glob("*.body"))
    if cache is not None:
        assert not list((cache / "debian-jeos").glob(".build-*"))


def cancel_when(prefix: str, delay: float = 0.5):
    """An on_log callback that cancels the build `delay` s after a line starting with
    `prefix`, from a timer thread, as the core does when an image is deleted."""
    def on_log(ctx: RecordingBuildContext, line: str) -> None:
        if line.startswith(prefix) and not ctx.cancel_event.is_set():
            threading.Timer(delay, ctx.cancel_event.set).start()
    return on_log


def test_a_failing_command_fails_the_build_with_its_output(image: Build, shared_cache_dir: Path,
                                                           tmp_path: Path):
    text = tdl("fails", body="""<commands>
      <command name='fine'>true</command>
      <command name='broken'>echo "output-of-the-broken-command"; exit 3</command>
    </commands>""")
    with pytest.raises(BuildError) as failure:
        build(tmp_path, shared_cache_dir, text)
    message = str(failure.value)
    assert "command 'broken' failed (exit code 3)" in message
    assert "output-of-the-broken-command" in message
    assert_nothing_left(tmp_path)


def test_a_cancelled_build_stops_within_seconds_and_leaves_nothing(image: Build,
                                                                   shared_cache_dir: Path,
                                                                   tmp_path: Path):
    text = tdl("cancelled", body="""<commands>
      <command name='long'>sleep 300 &amp; sleep 300</command>
    </commands>""")
    began = time.monotonic()
    with pytest.raises(BuildCancelled):
        build(tmp_path, shared_cache_dir, text, on_log=cancel_when("running command long"))
    assert time.monotonic() - began < 60
    assert_nothing_left(tmp_path)


def test_a_build_cancelled_while_mmdebstrap_runs_leaves_nothing(image: Build,
                                                                shared_cache_dir: Path,
                                                                tmp_path: Path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "debian-debs").symlink_to(shared_cache_dir / "debian-debs")
    with pytest.raises(BuildCancelled):
        build(tmp_path, cache, tdl("cancelled-early"),
              on_log=cancel_when("I: installing remaining packages", delay=1))
    assert_nothing_left(tmp_path, cache)
    assert [p.name for p in (cache / "debian-jeos").iterdir() if p.is_dir()] == []
