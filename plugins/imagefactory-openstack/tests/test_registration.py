"""The plugin is found through its entry point and loads as the service loads it."""

from importlib.metadata import entry_points

import imagefactory_openstack
from imagefactory_core.testing import loaded_plugin


def test_entry_point_names_the_package() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="imagefactory.plugins")}
    assert found["openstack"] == "imagefactory_openstack"


def test_the_plugin_loads_with_its_target_and_parameters() -> None:
    shown = loaded_plugin(imagefactory_openstack)
    assert shown["api_version"] == "1.0"
    assert shown["targets"] == [["openstack-kvm", "openstack"]]
    assert {p["name"] for p in shown["parameters"] if p["operator_only"]} == {
        "clouds_file", "clouds", "endpoints", "tls_verify", "ca_bundle", "active_timeout"}
