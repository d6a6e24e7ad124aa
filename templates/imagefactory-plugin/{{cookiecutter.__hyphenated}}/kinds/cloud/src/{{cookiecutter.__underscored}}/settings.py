"""What the plugin offers: its cloud target and the parameters it takes."""

from __future__ import annotations

from imagefactory_core.plugin import CloudTarget, Parameter

PLUGIN_ID = "{{ cookiecutter.__plugin_id }}"
"""The entry-point name (pyproject.toml): the configuration section is ``plugins.<id>``."""

TARGET = CloudTarget(
    PLUGIN_ID,
    description="disk images converted by qemu-img, pushed into a local directory",
)

FORMAT = "{{ cookiecutter.__plugin_id }}_format"
DIRECTORIES = "{{ cookiecutter.__plugin_id }}_directories"

FORMATS = ("qcow2", "vmdk", "raw")

PARAMETERS = [
    Parameter(FORMAT, "string", "qcow2", "the target image's disk format (qemu-img)",
              choices=FORMATS),
    # Where the service writes is the operator's choice, not a client's: a push may name only
    # these directories or one below them. None by default: every push is refused until the
    # operator lists one.
    Parameter(DIRECTORIES, "list", None,
              "directories (absolute paths) pushes may copy images into, with those below them",
              pattern=r"/.*", operator_only=True),
]
