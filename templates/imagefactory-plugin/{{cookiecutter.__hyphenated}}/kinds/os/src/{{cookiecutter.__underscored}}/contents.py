"""What goes into an image: ``/etc/os-release`` and the template's files, and the ICICLE
manifest that lists them.

This OS has no package manager and runs nothing: a template with packages, commands or files
to download is refused with a message saying so, rather than built without them.
"""

from __future__ import annotations

import hashlib

from imagefactory_core.plugin import BuildError, Template

from .settings import OS_NAME

OS_RELEASE = "/etc/os-release"


def image_files(template: Template) -> dict[str, bytes]:
    """The image's files, path to content, in the order they are written (a template file
    named twice, or naming ``/etc/os-release``, replaces the earlier content)."""
    unsupported = [what for what, given in (("packages", template.packages),
                                             ("commands", template.commands),
                                             ("precommands", template.precommands))
                   if given]
    if unsupported:
        raise BuildError(f"{OS_NAME} images cannot have {' or '.join(unsupported)}: the OS "
                         "has no package manager and runs nothing; give <files> only")
    files = {OS_RELEASE: os_release(template.os.version)}
    for file in template.files:
        if file.type == "url":
            raise BuildError(f"file {file.name}: {OS_NAME} images take raw or base64 files, "
                             "not files to download (type='url')")
        if file.name.endswith("/"):
            raise BuildError(f"file {file.name}: a file name cannot end with /")
        files[file.name] = file.data()
    return files


def os_release(version: str) -> bytes:
    """os-release(5) of the image; `version` has matched the OS target's version pattern."""
    return (f'NAME="{OS_NAME}"\nID={OS_NAME}\nVERSION_ID="{version}"\n'
            f'PRETTY_NAME="{OS_NAME} {version}"\n').encode()


def manifest(files: dict[str, bytes]) -> list[tuple[str, str | None]]:
    """ICICLE entries: each file, with its size and SHA-256 (this OS's "packages")."""
    return [(path, f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
            for path, data in files.items()]
