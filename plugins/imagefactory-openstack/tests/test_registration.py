"""The plugin is found through its entry point and its hooks match the core's specifications."""

from importlib.metadata import entry_points

import imagefactory_openstack
import pluggy

from imagefactory_core import NAME, hookspecs


def test_entry_point_names_the_package() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="imagefactory.plugins")}
    assert found["openstack"] == "imagefactory_openstack"


def test_hooks_match_the_core_specifications() -> None:
    manager = pluggy.PluginManager(NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(imagefactory_openstack)
    manager.check_pending()
    targets = manager.hook.imagefactory_cloud_targets()
    assert [(t.name, t.aliases) for found in targets for t in found] == [
        ("openstack-kvm", ("openstack",))]
