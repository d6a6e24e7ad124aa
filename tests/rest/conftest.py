"""REST contract tests run against the app with the test-only plugins of tests/plugins, so
they are fast and need no OS tooling or cloud."""

from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.plugins import PluginHost, load_plugins
from imagefactory_core.testing import make_config

from tests.plugins import fake_cloud, fake_os

FAKE_TDL = """<template>
  <name>{name}</name>
  <os>
    <rootpw>changeme</rootpw>
    <name>FakeOS</name>
    <version>17</version>
    <arch>x86_64</arch>
    <install type='url'><url>http://127.0.0.1:9/fake/</url></install>
  </os>
  <description>Fake 17</description>
  <packages><package name='httpd'/></packages>
</template>"""

SEED_CREDENTIALS = """<provider_credentials>
  <fake_credentials>
    <username>alice</username>
    <password>good</password>
  </fake_credentials>
</provider_credentials>"""


def fake_tdl(name: str = "f17jeos") -> str:
    return FAKE_TDL.format(name=name)


@pytest.fixture
def imagefactory_config(tmp_path: Path) -> Any:
    """The receivers the tests start for callbacks are on loopback: the operator allows it."""
    return make_config(tmp_path, outbound_allow=["127.0.0.1"])


@pytest.fixture
def imagefactory_plugins() -> PluginHost:
    return load_plugins(discover=False,
                        extra=[("FakeOS", fake_os), ("FakeCloud", fake_cloud)])


@pytest.fixture
def client(imagefactory_client):  # type: ignore[no-untyped-def]
    return imagefactory_client


@pytest.fixture
def storage(imagefactory_config) -> Path:  # type: ignore[no-untyped-def]
    return imagefactory_config.storage_dir
