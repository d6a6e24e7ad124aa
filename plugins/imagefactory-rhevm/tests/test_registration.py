"""The plugin is found through its entry point and loads as the service loads it."""

from importlib.metadata import entry_points

import imagefactory_rhevm
from imagefactory_core.testing import loaded_plugin


def test_entry_point_names_the_package() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="imagefactory.plugins")}
    assert found["rhevm"] == "imagefactory_rhevm"


def test_the_plugin_loads_with_its_target_and_parameters() -> None:
    shown = loaded_plugin(imagefactory_rhevm)
    assert shown["api_version"] == "1.0"
    assert shown["targets"] == [["rhevm", "ovirt"]]
    assert {p["name"] for p in shown["parameters"] if p["operator_only"]} == {
        "endpoints", "ca_file", "allow_insecure", "timeout"}
    formats = next(p for p in shown["parameters"] if p["name"] == "rhevm_image_format")
    assert (formats["default"], formats["choices"]) == ("qcow2", ["qcow2", "raw"])
