"""pytest plugin for plugin authors and for imagefactory's own tests.

Enabled automatically when imagefactory-core is installed (entry point ``pytest11``).
Fixtures:

* ``build_context``: a `BuildContext` in a temporary directory whose log lines are collected in
  ``build_context.lines`` and progress reports in ``build_context.reports``.
* ``imagefactory_config``, ``imagefactory_plugins``: what the app is built from (override them).
* ``imagefactory_app``, ``imagefactory_client``: the WSGI app and a Falcon test client.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon
import falcon.testing
import pytest

from .api.app import create_app
from .config import Config
from .context import BuildContext
from .plugins import PluginHost, load_plugins


class RecordingBuildContext(BuildContext):
    """A BuildContext that keeps its log lines and progress reports for assertions."""

    lines: list[str]
    reports: list[tuple[int, str | None]]


def make_build_context(root: Path, image_id: str = "test-image",
                       **config: object) -> RecordingBuildContext:
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


def make_config(root: Path, **overrides: object) -> Config:
    """A `Config` whose state, storage and caches live under `root`; development security
    (no TLS, no OAuth) unless `overrides` say otherwise."""
    values: dict[str, object] = {"state_dir": str(root / "state"),
                                 "cache_path": str(root / "cache"),
                                 "no_ssl": True, "no_oauth": True}
    values.update(overrides)
    return Config(**values)  # type: ignore[arg-type]


def wait_for_status(client: falcon.testing.TestClient, href_path: str,
                    statuses: tuple[str, ...] = ("COMPLETE", "FAILED", "DELETED",
                                                 "DELETEFAILED"),
                    timeout: float = 60.0) -> dict[str, Any]:
    """Poll ``GET href_path`` until the image's status is one of `statuses`; return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = client.simulate_get(href_path)
        assert result.status_code == 200, result.text
        image = next(iter(result.json.values()))
        if image["status"] in statuses:
            return image
        if time.monotonic() > deadline:
            raise AssertionError(f"{href_path} still {image['status']} after {timeout} s: "
                                 f"{image['status_detail']}")
        time.sleep(0.05)


@pytest.fixture
def imagefactory_config(tmp_path: Path) -> Config:
    """Override this fixture to change the configuration the `imagefactory_app` uses."""
    return make_config(tmp_path)


@pytest.fixture
def imagefactory_plugins() -> PluginHost:
    """The plugins the app uses: the installed ones. Override to inject test plugins."""
    return load_plugins()


@pytest.fixture
def imagefactory_app(imagefactory_config: Config,
                     imagefactory_plugins: PluginHost) -> Iterator[falcon.App]:
    """The WSGI app on a fresh SQLite store; its build engine is stopped afterwards."""
    app = create_app(imagefactory_config, imagefactory_plugins)
    yield app
    app.services.engine.shutdown(timeout=30)  # type: ignore[attr-defined]


@pytest.fixture
def imagefactory_client(imagefactory_app: falcon.App) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(imagefactory_app)
