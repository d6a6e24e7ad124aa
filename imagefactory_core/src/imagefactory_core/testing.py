"""pytest plugin for plugin authors and for imagefactory's own tests.

Enabled automatically when imagefactory-core is installed (entry point ``pytest11``).
Fixtures:

* ``build_context``: a `BuildContext` in a temporary directory whose log lines are collected in
  ``build_context.lines`` and progress reports in ``build_context.reports``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .context import BuildContext


class RecordingBuildContext(BuildContext):
    """A BuildContext that keeps its log lines and progress reports for assertions."""

    lines: list[str]
    reports: list[tuple[int, str | None]]


def make_build_context(root: Path, image_id: str = "test-image", **config: object) -> RecordingBuildContext:
    """Build a `RecordingBuildContext` rooted at `root` (work, cache and body under it)."""
    lines: list[str] = []
    reports: list[tuple[int, str | None]] = []
    workdir = root / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = RecordingBuildContext(
        image_id=image_id,
        workdir=workdir,
        body_path=root / f"{image_id}.body",
        cache_root=root / "cache",
        config=dict(config),
        progress_sink=lambda percent, activity: reports.append((percent, activity)),
        log_sink=lines.append,
    )
    ctx.lines = lines
    ctx.reports = reports
    return ctx


@pytest.fixture
def build_context(tmp_path: Path) -> RecordingBuildContext:
    return make_build_context(tmp_path)
