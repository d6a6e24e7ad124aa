"""Plugin discovery and the PluginHost facade.

Discovery is tested for real: each test writes throwaway distributions (``*.dist-info`` with
METADATA and entry_points.txt, plus their modules) into a directory put on sys.path, which is
where importlib.metadata, and so stevedore, find installed distributions. Installed plugins of
this machine are disabled by name so only the throwaway ones load.
"""

from __future__ import annotations

import logging
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from imagefactory_core.api.app import create_app
from imagefactory_core.config import load_config
from imagefactory_core.errors import InvalidRequest, NotFound
from imagefactory_core.model import BuildResult, CloudTarget, OSTarget
from imagefactory_core.plugins import ENTRY_POINT_GROUP, load_plugins
from imagefactory_core.tdl import OSSpec
from imagefactory_core.testing import make_config

from imagefactory_core import hookimpl

GOOD = """
    from imagefactory_core.plugin import BuildResult, OSTarget, Parameter, hookimpl

    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def imagefactory_parameters():
        return [Parameter("speed", "integer", 3, "how fast", minimum=1, maximum=9),
                Parameter("proxy", "url", help="where to go through", operator_only=True)]

    @hookimpl
    def imagefactory_os_targets():
        return [OSTarget("DiscoveredOS", r"\\d+", ("x86_64",), "found by entry point")]

    @hookimpl
    def imagefactory_create_base_image(ctx, template, parameters):
        ctx.progress(50, "Discovered plugin at work")
        ctx.body_path.write_bytes(b"DISCOVERED " + template.name.encode()
                                  + b" speed=%d" % parameters["speed"])
        return BuildResult(properties={"disk_format": "raw"})
"""
BROKEN_IMPORT = """
    import imagefactory_no_such_sdk_xyz  # the SDK this plugin needs is not installed
"""
MISSPELT = """
    from imagefactory_core.plugin import OSTarget, hookimpl

    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def imagefactory_os_targets():
        return [OSTarget("MisspeltOS", r"\\d+", ("x86_64",))]

    @hookimpl
    def imagefactory_create_base_imag(ctx, template, parameters):
        raise AssertionError("never called")
"""
BLOCKED = """
    raise RuntimeError("a disabled plugin must never be imported")
"""
RAISING = """
    from imagefactory_core.plugin import hookimpl

    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def imagefactory_cloud_targets():
        raise RuntimeError("cloud SDK not configured")
"""
CLASH = """
    from imagefactory_core.plugin import CloudTarget, hookimpl

    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def imagefactory_cloud_targets():
        return [CloudTarget("clashcloud", aliases=("{alias}",))]
"""

NEEDS_API = """
    from imagefactory_core.plugin import OSTarget, hookimpl

    {declaration}

    @hookimpl
    def imagefactory_os_targets():
        raise AssertionError("an incompatible plugin's hooks are never called")
"""
BAD_PARAMETERS = """
    from imagefactory_core.plugin import OSTarget, Parameter, hookimpl

    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def imagefactory_os_targets():
        return [OSTarget("BadParamOS", r"\\d+", ("x86_64",))]

    @hookimpl
    def imagefactory_parameters():
        return [Parameter("{first}"), Parameter("{second}")]
"""

TEMPLATE = """<template>
  <name>{name}</name>
  <os>
    <name>{os}</name>
    <version>3</version>
    <arch>x86_64</arch>
    <install type='url'><url>http://127.0.0.1:9/os/</url></install>
  </os>
</template>"""


@dataclass
class Distributions:
    """The throwaway plugins: entry-point name → module name, and the names to disable so
    nothing else installed on this machine is loaded."""

    modules: dict[str, str]
    others: list[str]


def write_distribution(root: Path, name: str, version: str, metadata: list[str],
                       plugins: dict[str, tuple[str, str]]) -> None:
    """A distribution `name` whose entry points map plugin names to modules (name, source)."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("\n".join(["Metadata-Version: 2.1", f"Name: {name}",
                                              f"Version: {version}", *metadata]) + "\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"]
    for plugin, (module, source) in plugins.items():
        lines.append(f"{plugin} = {module}")
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def distributions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Distributions]:
    others = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
    suffix = uuid.uuid4().hex[:8]
    modules = {plugin: f"ifx_{plugin}_{suffix}" for plugin in
               ("discovered", "broken_import", "misspelt", "blocked", "raising", "clash_a",
                "clash_b", "api_2", "api_1_1", "no_api", "api_junk",
                "twice", "reserved")}
    root = tmp_path / "site"
    root.mkdir()
    write_distribution(root, "imagefactory-testplugins", "3.2.1", [
        "Summary: Throwaway plugins for the discovery tests",
        "Author-email: Jane Doe <jane@example.org>",
        "License-Expression: MIT",
        "Project-URL: Homepage, https://example.org/testplugins",
    ], {
        "discovered": (modules["discovered"], GOOD),
        "broken_import": (modules["broken_import"], BROKEN_IMPORT),
        "misspelt": (modules["misspelt"], MISSPELT),
        "blocked": (modules["blocked"], BLOCKED),
        "raising": (modules["raising"], RAISING),
        "clash_a": (modules["clash_a"], CLASH.format(alias="clash-a")),
    })
    write_distribution(root, "imagefactory-apiplugins", "1.0", [], {
        name: (modules[name], NEEDS_API.format(declaration=declaration)) for name, declaration
        in (("api_2", 'IMAGEFACTORY_PLUGIN_API = "2.0"'),
            ("api_1_1", 'IMAGEFACTORY_PLUGIN_API = "1.1"'),
            ("no_api", ""), ("api_junk", 'IMAGEFACTORY_PLUGIN_API = "latest"'))
    } | {"twice": (modules["twice"], BAD_PARAMETERS.format(first="a", second="a")),
         "reserved": (modules["reserved"], BAD_PARAMETERS.format(first="a",
                                                                  second="callbacks"))})
    write_distribution(root, "imagefactory-legacyplugin", "0.9", [
        "Summary: An older plugin with old-style metadata",
        "Author: Old Timer",
        "Author-email: old@example.org",
        "License: GPL-2.0-or-later",
    ], {"clash_b": (modules["clash_b"], CLASH.format(alias="clash-b"))})
    monkeypatch.syspath_prepend(str(root))
    yield Distributions(modules, others)
    for module in modules.values():
        sys.modules.pop(module, None)


def discover(dists: Distributions, *disabled: str) -> Any:
    return load_plugins(disabled=[*dists.others, *disabled])


def test_discovered_plugin_is_loaded_with_its_distributions_metadata(distributions):
    host = discover(distributions, "broken_import", "misspelt", "raising", "clash_b")
    info = host.get("discovered")
    assert info.error is None and not info.disabled
    meta = info.metadata()
    assert meta["status"] == "loaded"
    assert meta["type"] == "os"
    assert meta["version"] == "3.2.1"
    assert meta["description"] == "Throwaway plugins for the discovery tests"
    assert meta["license"] == "MIT"
    assert meta["maintainer"] == {"name": "Jane Doe", "email": "jane@example.org",
                                  "url": "https://example.org/testplugins"}
    assert meta["distribution"] == "imagefactory-testplugins"
    assert meta["targets"] == [["DiscoveredOS", r"\d+", "x86_64"]]
    assert host.resolve_os(OSSpec("discoveredos", "3", "x86_64", "url")).id == "discovered"


def test_old_style_metadata_is_read_too(distributions):
    meta = discover(distributions).get("clash_b").metadata()
    assert meta["version"] == "0.9"
    assert meta["license"] == "GPL-2.0-or-later"
    assert meta["maintainer"] == {"name": "Old Timer", "email": "old@example.org", "url": None}
    assert meta["description"] == "An older plugin with old-style metadata"


def test_plugin_that_fails_to_import_is_reported_with_its_error(distributions):
    host = discover(distributions)
    info = host.get("broken_import")
    meta = info.metadata()
    assert meta["status"] == "broken"
    assert "imagefactory_no_such_sdk_xyz" in meta["error"]
    assert meta["error"].startswith("ModuleNotFoundError")
    assert meta["version"] == "3.2.1"
    assert info not in host.loaded()
    assert host.get("discovered") in host.loaded()


def test_misspelt_hook_makes_the_plugin_broken(distributions):
    host = discover(distributions)
    meta = host.get("misspelt").metadata()
    assert meta["status"] == "broken"
    assert "imagefactory_create_base_imag" in meta["error"]
    with pytest.raises(InvalidRequest) as raised:
        host.resolve_os(OSSpec("MisspeltOS", "3", "x86_64", "url"))
    assert "DiscoveredOS" in str(raised.value)


def test_registration_hook_that_raises_makes_the_plugin_broken(distributions):
    meta = discover(distributions).get("raising").metadata()
    assert meta["status"] == "broken"
    assert meta["error"] == "RuntimeError: cloud SDK not configured"


def test_disabled_plugin_is_listed_but_never_imported(distributions):
    host = discover(distributions, "blocked")
    info = host.get("blocked")
    assert info.disabled and info.plugin is None
    meta = info.metadata()
    assert meta["status"] == "disabled"
    assert meta["error"] is None
    assert meta["version"] == "3.2.1"
    assert distributions.modules["blocked"] not in sys.modules
    assert discover(distributions).get("blocked").metadata()["status"] == "broken"


def test_target_name_clash_keeps_one_owner(distributions, caplog):
    caplog.set_level(logging.ERROR)
    host = discover(distributions)
    owner, canonical = host.resolve_cloud("CLASHCLOUD")
    assert canonical == "clashcloud"
    other = host.get("clash_b" if owner.id == "clash_a" else "clash_a")
    assert [t.name for t in owner.cloud_targets] == ["clashcloud"]
    assert other.cloud_targets == []
    assert any("already served" in r.getMessage() and other.id in r.getMessage()
               for r in caplog.records)


def test_the_service_stays_up_and_builds_with_broken_plugins_around(distributions, tmp_path):
    env = {"IMAGEFACTORY_DISABLED_PLUGINS": ",".join([*distributions.others, "blocked"]),
           "IMAGEFACTORY_STATE_DIR": str(tmp_path / "state"),
           "IMAGEFACTORY_CACHE_PATH": str(tmp_path / "cache"),
           "IMAGEFACTORY_NO_OAUTH": "true", "IMAGEFACTORY_NO_SSL": "true"}
    config = load_config(env=env)
    assert "blocked" in config.disabled_plugins
    app = create_app(config)
    try:
        client = falcon.testing.TestClient(app)
        assert client.simulate_get("/imagefactory").status_code == 200
        listed = {p["id"]: p for p in client.simulate_get("/imagefactory/plugins").json["plugins"]}
        assert {k: v["status"] for k, v in listed.items() if k in distributions.modules} == {
            "discovered": "loaded", "broken_import": "broken", "misspelt": "broken",
            "blocked": "disabled", "raising": "broken", "clash_a": "loaded",
            "clash_b": "loaded", "api_2": "incompatible", "api_1_1": "incompatible",
            "no_api": "incompatible", "api_junk": "incompatible", "twice": "broken",
            "reserved": "broken"}
        assert "imagefactory_no_such_sdk_xyz" in listed["broken_import"]["error"]
        one = client.simulate_get("/imagefactory/plugins/misspelt")
        assert one.status_code == 200 and one.json["status"] == "broken"
        assert distributions.modules["blocked"] not in sys.modules

        created = client.simulate_post("/imagefactory/base_images", json={"base_image": {
            "template": TEMPLATE.format(name="works", os="DiscoveredOS")}})
        assert created.status_code == 202, created.text
        href = f"/imagefactory/base_images/{created.json['base_image']['id']}"
        deadline = time.monotonic() + 20
        while client.simulate_get(href).json["base_image"]["status"] not in ("COMPLETE",
                                                                            "FAILED"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.simulate_get(href).json["base_image"]["status"] == "COMPLETE"
        assert client.simulate_get(f"{href}/raw_image").content == b"DISCOVERED works speed=3"

        refused = client.simulate_post("/imagefactory/base_images", json={"base_image": {
            "template": TEMPLATE.format(name="no", os="MisspeltOS")}})
        assert refused.status_code == 400
        assert "DiscoveredOS" in refused.json["description"]
    finally:
        app.services.engine.shutdown(timeout=10)


# -- load_plugins without discovery: plugins given as objects ---------------------------------
class GoodCloud:
    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def imagefactory_cloud_targets(self) -> list[CloudTarget]:
        return [CloudTarget("mycloud", aliases=("my",))]


class Misspelt:
    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def imagefactory_os_targets(self) -> list[OSTarget]:
        return [OSTarget("Typo", r".*", ("x86_64",))]

    @hookimpl
    def imagefactory_create_base_imag(self, ctx: Any) -> BuildResult:
        raise AssertionError("never called")


class NotOurHookName:
    """A hookimpl that matches no spec even without the imagefactory_ prefix."""

    IMAGEFACTORY_PLUGIN_API = "1.0"

    @hookimpl
    def create_base_image(self, ctx: Any) -> None:
        raise AssertionError("never called")


def test_extra_plugins_without_discovery():
    host = load_plugins(discover=False, extra=[("good", GoodCloud()), ("typo", Misspelt()),
                                               ("odd", NotOurHookName()),
                                               ("second", GoodCloud())],
                        disabled=["second "])
    assert set(host.infos) == {"good", "typo", "odd", "second"}
    assert host.get("good").metadata()["status"] == "loaded"
    assert host.get("good").metadata()["version"] is None
    assert host.get("typo").metadata()["status"] == "broken"
    assert "imagefactory_create_base_imag" in host.get("typo").error
    assert host.get("odd").metadata()["status"] == "broken"
    assert "create_base_image" in host.get("odd").error
    assert host.get("second").metadata()["status"] == "disabled"
    assert host.resolve_cloud("MY") == (host.get("good"), "mycloud")
    assert [i.id for i in host.loaded()] == ["good"]
    assert host.pm.get_plugin("typo") is None


def test_unknown_target_os_and_plugin_name_the_known_ones():
    host = load_plugins(discover=False, extra=[("good", GoodCloud())])
    with pytest.raises(InvalidRequest) as raised:
        host.resolve_cloud("ec2")
    assert "'ec2'" in str(raised.value) and "mycloud" in str(raised.value)
    with pytest.raises(InvalidRequest) as raised:
        host.resolve_cloud(None)
    assert "target" in str(raised.value)
    with pytest.raises(InvalidRequest) as raised:
        host.resolve_os(OSSpec("Fedora", "40", "x86_64", "url"))
    assert "no OS plugin is installed" in str(raised.value)
    with pytest.raises(NotFound) as missing:
        host.get("nope")
    assert "good" in str(missing.value)


def test_plugin_module_that_fails_to_import_is_reported(tmp_path):
    host = load_plugins(discover=False, modules=["imagefactory_no_such_plugin_module"])
    meta = host.get("imagefactory_no_such_plugin_module").metadata()
    assert meta["status"] == "broken"
    assert "ModuleNotFoundError" in meta["error"]
    app = create_app(make_config(tmp_path), host)
    try:
        listed = falcon.testing.TestClient(app).simulate_get("/imagefactory/plugins")
        assert listed.json["plugins"][0]["status"] == "broken"
    finally:
        app.services.engine.shutdown(timeout=10)


# -- plugin API versions and declared parameters ------------------------------------------------
@pytest.mark.parametrize(("plugin", "reason"), [
    ("api_2", "the plugin needs plugin API 2.0; imagefactory-core "),
    ("api_1_1", "the plugin needs plugin API 1.1; imagefactory-core "),
    ("no_api", 'declares no plugin API version: add IMAGEFACTORY_PLUGIN_API = "1.0"'),
    ("api_junk", "IMAGEFACTORY_PLUGIN_API = 'latest' is not a version such as \"1.0\""),
])
def test_a_plugin_for_another_api_is_listed_as_incompatible_and_not_loaded(
        distributions, plugin, reason):
    host = discover(distributions)
    info = host.get(plugin)
    meta = info.metadata()
    assert meta["status"] == "incompatible"
    assert reason in meta["error"]
    assert "provides plugin API 1.0" in meta["error"] or plugin in ("no_api", "api_junk")
    assert info not in host.loaded()
    assert not host.pm.is_registered(info.plugin)  # its hooks are never called


@pytest.mark.parametrize(("plugin", "error"), [
    ("twice", "ValueError: parameters declared twice: a"),
    ("reserved", "ValueError: parameters reserved by the core: callbacks"),
])
def test_bad_parameter_declarations_make_the_plugin_broken(distributions, plugin, error):
    assert discover(distributions).get(plugin).error == error


def test_a_plugin_shows_its_api_version_and_declared_parameters(distributions, tmp_path):
    disabled = [*distributions.others, "broken_import", "misspelt", "raising", "clash_b"]
    app = create_app(make_config(tmp_path, disabled_plugins=disabled))
    try:
        client = falcon.testing.TestClient(app)
        one = client.simulate_get("/imagefactory/plugins/discovered").json
        assert one["api_version"] == "1.0"
        assert one["parameters"] == [
            {"name": "speed", "type": "integer", "help": "how fast", "default": 3,
             "choices": None, "minimum": 1, "maximum": 9, "pattern": None, "secret": False,
             "operator_only": False},
            {"name": "proxy", "type": "url", "help": "where to go through", "default": None,
             "choices": None, "minimum": None, "maximum": None, "pattern": None,
             "secret": False, "operator_only": True}]
        listed = client.simulate_get("/imagefactory/plugins").json["plugins"]
        assert all("parameters" not in p for p in listed)
        schema = client.simulate_get("/imagefactory/openapi.json").json
        declared = schema["components"]["schemas"]["ImageRequest"]["properties"]["parameters"]
        assert declared["properties"]["speed"] == {
            "type": "integer", "description": "how fast", "minimum": 1, "maximum": 9,
            "default": 3, "x-plugins": ["discovered"], "x-operator-only": False}
        assert declared["properties"]["proxy"]["x-operator-only"] is True
        assert declared["properties"]["callbacks"]["x-plugins"] == ["core"]
        assert declared["additionalProperties"] is False
    finally:
        app.services.engine.shutdown(timeout=10)


@pytest.mark.parametrize(("section", "message"), [
    ({"sped": 4}, "configuration plugins.discovered: unknown key 'sped'; the plugin's "
                  "parameters are: proxy, speed"),
    ({"speed": 10}, "parameter 'speed' (configuration plugins.discovered): cannot use 10: "
                    "expected a whole number, from 1 to 9"),
    ({"proxy": "ftp://127.0.0.1/"}, "expected an http:// or https:// URL"),
    ({"proxy": "ftp://builder:hunter2@127.0.0.1/"},  # a URL's credentials are not echoed
     "cannot use 'ftp://*****@127.0.0.1/': expected an http:// or https:// URL"),
])
def test_a_bad_plugin_configuration_stops_the_service_with_a_message(distributions, tmp_path,
                                                                      section, message):
    config = make_config(tmp_path, disabled_plugins=distributions.others,
                         plugins={"discovered": section})
    with pytest.raises(InvalidRequest) as raised:
        create_app(config)
    assert message in str(raised.value)


def test_configuration_of_a_plugin_that_is_not_loaded_is_only_warned_about(
        distributions, tmp_path, caplog):
    config = make_config(tmp_path, disabled_plugins=distributions.others,
                         plugins={"broken_import": {"anything": 1}, "discovered": {"speed": 7}})
    app = create_app(config)
    try:
        assert any("plugins.broken_import: no such plugin is loaded" in r.getMessage()
                   for r in caplog.records)
        assert app.services.plugins.config_of("discovered") == {"speed": 7}
    finally:
        app.services.engine.shutdown(timeout=10)
