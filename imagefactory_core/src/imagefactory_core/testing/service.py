"""The service side of the pytest plugin: build contexts, plugins, configuration, the app.

Fixtures (registered through `imagefactory_core.testing`):

* ``build_context``: a `BuildContext` in a temporary directory whose log lines are collected in
  ``build_context.lines`` and progress reports in ``build_context.reports``.
* `loaded_plugin(plugin)`: the plugin registered as the service would, or why it cannot be.
* `plugin_parameters(plugin, request, config)`: the resolved parameters the core would give a
  plugin's work hooks, for tests that call hooks directly; a bad value raises `ParameterError`
  with the message a REST client would get.
* ``imagefactory_config``, ``imagefactory_plugins``: what the app is built from (override them).
* ``imagefactory_app``, ``imagefactory_client``: the WSGI app and a Falcon test client.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import falcon
import falcon.testing
import pytest

from ..api.app import create_app
from ..config import Config
from ..context import BuildContext
from ..outbound import OutboundPolicy
from ..parameters import ParameterError, check_config, resolve
from ..plugins import PluginHost, load_plugins
from ..sandbox.runner import SandboxSettings

__all__ = ["ParameterError", "RecordingBuildContext", "loaded_plugin", "make_build_context",
           "make_config", "plugin_parameters", "wait_for_status"]


class RecordingBuildContext(BuildContext):
    """A BuildContext that keeps its log lines and progress reports for assertions."""

    lines: list[str]
    reports: list[tuple[int, str | None]]


def make_build_context(root: Path, image_id: str = "test-image",
                       egress_allow: Sequence[str] = (),
                       outbound_allow: Sequence[str] = ()) -> RecordingBuildContext:
    """Build a `RecordingBuildContext` rooted at `root` (work, cache and body under it).

    `egress_allow` is the operator's sandbox allow-list (configuration ``sandbox_egress_allow``):
    destinations beyond public addresses that sandboxed steps may reach, such as a package
    mirror on a private network. `outbound_allow` is the operator's outbound allow-list
    (configuration ``outbound_allow``, ``ctx.outbound``): addresses beyond public ones the
    plugin may connect to for a request, such as a cloud endpoint on 127.0.0.1.
    """
    lines: list[str] = []
    reports: list[tuple[int, str | None]] = []
    workdir = root / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = RecordingBuildContext(
        image_id=image_id,
        workdir=workdir,
        body_path=root / f"{image_id}.body",
        cache_root=root / "cache",
        progress_sink=lambda percent, activity: reports.append((percent, activity)),
        log_sink=lines.append,
        sandbox_settings=SandboxSettings(egress_allow=tuple(egress_allow)),
        outbound=OutboundPolicy(tuple(outbound_allow)),
    )
    ctx.lines = lines
    ctx.reports = reports
    return ctx


@pytest.fixture
def build_context(tmp_path: Path) -> RecordingBuildContext:
    return make_build_context(tmp_path)


def loaded_plugin(plugin: object) -> dict[str, Any]:
    """Register `plugin` as the service would and return its ``/plugins/<id>`` view; raise
    AssertionError with the reason when it does not load (wrong API version, a misspelt hook,
    a registration hook or parameter declaration that fails)."""
    host = load_plugins(discover=False, extra=[("plugin-under-test", plugin)])
    info = host.get("plugin-under-test")
    if info.error:
        raise AssertionError(f"the plugin does not load: {info.error}")
    return info.metadata(detailed=True)


def plugin_parameters(plugin: object, request: dict[str, Any] | None = None,
                      config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters the core gives `plugin`'s work hooks for a request with `request`
    parameters when its configuration section is `config`: checked and typed as the service
    does (a bad value raises the same error), defaults filled in."""
    host = load_plugins(discover=False, extra=[("plugin-under-test", plugin)])
    info = host.get("plugin-under-test")
    if info.error:
        raise AssertionError(f"the plugin does not load: {info.error}")
    typed_config = check_config(info.id, info.parameters, config or {})
    typed_request = host.declarations([info]).check(request or {}, granted=["*"])
    return resolve(info.parameters, typed_request, typed_config)


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
