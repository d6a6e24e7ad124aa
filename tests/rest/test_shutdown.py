"""Stopping the service while a plugin ignores the cancellation (a plugin bug): the engine
gives up on it after its timeout, records the image FAILED saying why, kills its commands, and
keeps the state directory locked, since the plugin's thread still runs in this process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import TestClient
from imagefactory_core.api.app import create_app
from imagefactory_core.plugin import (
    BuildContext,
    BuildResult,
    OSTarget,
    Template,
    build_icicle,
    hookimpl,
)
from imagefactory_core.plugins import load_plugins
from imagefactory_core.testing import make_config

from tests.procfs import running

TDL = """<template><name>deaf</name><os><rootpw>x</rootpw><name>DeafOS</name>
<version>1</version><arch>x86_64</arch><install type='url'><url>http://127.0.0.1:9/</url>
</install></os></template>"""


class DeafOS:
    """Builds wait in Python for the test, never looking at the cancellation flag; the first
    command they start is the one the abandonment must kill."""

    IMAGEFACTORY_PLUGIN_API = "1.0"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.waiting = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def imagefactory_os_targets(self) -> list[OSTarget]:
        return [OSTarget("DeafOS", r"\d+", ("x86_64",), "Test-only OS deaf to cancellation")]

    @hookimpl
    def imagefactory_create_base_image(self, ctx: BuildContext, template: Template,
                                       parameters: Mapping[str, Any]) -> BuildResult:
        ctx.run(["sh", "-c", f"sleep 600 >/dev/null 2>&1 & echo $! > {self.workdir}/pid"])
        self.waiting.set()
        self.release.wait()
        ctx.body_path.write_bytes(b"too late")
        return BuildResult(icicle=build_icicle([], template.description))


@pytest.fixture
def deaf(tmp_path: Path) -> Iterator[DeafOS]:
    plugin = DeafOS(tmp_path)
    yield plugin
    plugin.release.set()


def test_a_plugin_deaf_to_cancellation_is_abandoned_at_shutdown(tmp_path, deaf, caplog):
    caplog.set_level(logging.WARNING)
    app = create_app(make_config(tmp_path), load_plugins(discover=False,
                                                         extra=[("DeafOS", deaf)]))
    client = TestClient(app)
    posted = client.simulate_post("/imagefactory/base_images",
                                  json={"base_image": {"template": TDL}})
    href = f"/imagefactory/base_images/{posted.json['base_image']['id']}"
    assert deaf.waiting.wait(60)
    leaked = int((tmp_path / "pid").read_text())
    engine = app.services.engine

    engine.shutdown(timeout=1)

    image = client.simulate_get(href).json["base_image"]
    assert image["status"] == "FAILED"
    assert "did not stop within 1 s (it ignored the cancellation)" in \
        image["status_detail"]["error"]
    assert not running(leaked)
    assert engine.state_lock.held  # the deaf thread still runs in this process
    log = client.simulate_get(f"{href}/log").text
    assert log.rstrip().endswith("== FAILED")

    deaf.release.set()  # the plugin ends late: its end is not recorded over the verdict
    deadline = time.monotonic() + 60
    while not any("after shutdown gave up on it" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the deaf build never ended"
        time.sleep(0.02)
    assert client.simulate_get(href).json["base_image"]["status"] == "FAILED"
    assert client.simulate_get(f"{href}/log").text == log
    engine.state_lock.release()
