"""The plugin loads as the service loads it, and the installed distribution is discovered."""

from imagefactory_core.testing import loaded_plugin

import {{ cookiecutter.__underscored }} as plugin
from {{ cookiecutter.__underscored }} import settings


def test_the_plugin_loads_as_a_cloud_plugin():
    info = loaded_plugin(plugin)
    assert info["status"] == "loaded"
    assert info["type"] == "cloud"
    assert info["targets"] == [[settings.TARGET.name]]
    declared = {parameter["name"]: parameter for parameter in info["parameters"]}
    assert declared[settings.FORMAT]["choices"] == list(settings.FORMATS)
    assert declared[settings.DIRECTORIES]["operator_only"] is True


def test_the_service_lists_the_installed_plugin(imagefactory_client):
    plugins = imagefactory_client.simulate_get("/imagefactory/plugins").json["plugins"]
    ours = {entry["id"]: entry for entry in plugins}.get(settings.PLUGIN_ID)
    assert ours is not None, [entry["id"] for entry in plugins]
    assert ours["status"] == "loaded", ours["error"]
    assert ours["type"] == "cloud"
    assert ours["distribution"] == "{{ cookiecutter.__hyphenated }}"
    assert ours["maintainer"]["name"] == "{{ cookiecutter.author_name }}"
