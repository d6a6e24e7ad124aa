"""`imagefactory_core.testing` is a package now: what plugin tests imported before still
imports, the harness is there beside it, and the pytest plugin still gives its fixtures."""

from __future__ import annotations

import imagefactory_core.testing as testing
from imagefactory_core.testing.boot import __all__ as harness


def test_the_names_plugins_import_are_all_there():
    before = ["ParameterError", "RecordingBuildContext", "loaded_plugin", "make_build_context",
              "make_config", "plugin_parameters", "wait_for_status"]
    for name in [*before, *harness]:
        assert hasattr(testing, name), name
    assert set(before) | set(harness) <= set(testing.__all__)


def test_the_pytest_plugin_still_provides_its_fixtures(build_context, imagefactory_config):
    build_context.log("a line")
    assert build_context.lines == ["a line"]
    assert imagefactory_config.no_oauth
