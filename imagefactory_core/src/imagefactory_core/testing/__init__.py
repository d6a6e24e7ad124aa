"""pytest plugin and helpers for plugin authors and for imagefactory's own tests.

Enabled automatically when imagefactory-core is installed (entry point ``pytest11``).

* The service (`service`): fixtures ``build_context``, ``imagefactory_config``,
  ``imagefactory_plugins``, ``imagefactory_app``, ``imagefactory_client``; helpers
  `make_build_context`, `loaded_plugin`, `plugin_parameters`, `make_config`, `wait_for_status`.
* Booting images as their cloud does (`boot`): `boot_first_time` in an `Ec2`,
  `OpenStackConfigDrive`, `OpenStackMetadataService` or `BareMachine` environment, and the
  pieces it is made of (`Machine`/`Qemu`, the metadata services, config drives).
"""

from .boot import *  # noqa: F403  (the harness's public names, listed in boot.__all__)
from .boot import __all__ as _boot_names
from .service import (
    ParameterError,
    RecordingBuildContext,
    build_context,
    imagefactory_app,
    imagefactory_client,
    imagefactory_config,
    imagefactory_plugins,
    loaded_plugin,
    make_build_context,
    make_config,
    plugin_parameters,
    wait_for_status,
)

__all__ = ["ParameterError", "RecordingBuildContext", "build_context", "imagefactory_app",
           "imagefactory_client", "imagefactory_config", "imagefactory_plugins",
           "loaded_plugin", "make_build_context", "make_config", "plugin_parameters",
           "wait_for_status", *_boot_names]
