"""What the plugin offers: the OS it builds and the parameters it takes."""

from __future__ import annotations

from imagefactory_core.plugin import OSTarget, Parameter

PLUGIN_ID = "{{ cookiecutter.__plugin_id }}"
"""The entry-point name (pyproject.toml): the configuration section is ``plugins.<id>``."""

OS_NAME = PLUGIN_ID
"""The ``<os><name>`` templates give (matched ignoring case)."""

OS_TARGET = OSTarget(
    OS_NAME,
    versions=r"\d+(\.\d+)*",
    # The image holds files only, nothing that runs: any architecture a template names here
    # gets the same image.
    arches=("x86_64", "aarch64", "i386", "armv7l", "ppc64le", "s390x"),
    description="a raw ext4 file system of the template's files (not bootable)",
)

LABEL = "{{ cookiecutter.__plugin_id }}_label"
MAX_DISK_MIB = "{{ cookiecutter.__plugin_id }}_max_disk_mib"

PARAMETERS = [
    Parameter(LABEL, "string", "{{ cookiecutter.__plugin_id[:16] }}",
              "the file system's label (up to 16 letters, digits, - or _)",
              pattern=r"[A-Za-z0-9_-]{1,16}"),
    Parameter(MAX_DISK_MIB, "integer", 1024,
              "the largest <disk><size> a template may ask for, in MiB",
              minimum=1, maximum=1024 * 1024, operator_only=True),
]
