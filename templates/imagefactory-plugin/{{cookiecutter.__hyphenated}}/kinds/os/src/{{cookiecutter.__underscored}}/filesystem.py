"""The image body: an ext4 file system made from a tree by the host's ``mkfs.ext4 -d``.

File names and contents come from the template, that is from a network client, so the tree is
written, and the file system made, in the core's build sandbox (``ctx.sandbox``) with the
host's tools: a name such as ``/../../etc/passwd`` can reach nothing of the host, and the file
system records the image's owners (root), not the host's. The host only writes the contents
to numbered files the sandbox reads.
"""

from __future__ import annotations

import os

from imagefactory_core.plugin import BuildContext, BuildError, CommandFailed, Template

MIB = 1024 * 1024
DEFAULT_DISK_BYTES = 16 * MIB

# Run inside the sandbox: $1 is the label, then one path per file /files/0, /files/1 …
_SCRIPT = """set -eu
label=$1
shift
i=0
for path do
    install -D -m 0644 "/files/$i" "/tree$path"
    i=$((i + 1))
done
exec mkfs.ext4 -q -F -L "$label" -d /tree /disk
"""


def disk_size(template: Template, max_mib: int) -> int:
    """The file system's size in bytes: the template's ``<disk><size>``, else 16 MiB."""
    size = template.disk_size or DEFAULT_DISK_BYTES
    if size > max_mib * MIB:
        raise BuildError(f"<disk><size> asks for {size // MIB} MiB; this service builds at "
                         f"most {max_mib} MiB")
    return size


def make_image(ctx: BuildContext, files: dict[str, bytes], size: int, label: str) -> None:
    """Write `files` (path in the image to content) into an ext4 file system of `size`
    bytes labelled `label`, at ``ctx.body_path``."""
    staged = ctx.workdir / "files"
    staged.mkdir()
    for index, data in enumerate(files.values()):
        (staged / str(index)).write_bytes(data)
    tree = ctx.workdir / "tree"
    tree.mkdir()
    with open(ctx.body_path, "wb") as disk:
        disk.truncate(size)
    sandbox = ctx.sandbox(None, host_tools=True, inputs=[(staged, "/files")],
                          outputs=[(tree, "/tree"), (ctx.body_path, "/disk")])
    try:
        sandbox.run(["/bin/sh", "-c", _SCRIPT, "sh", label, *files])
    except CommandFailed as error:
        if "allocate" in error.output_tail or "space" in error.output_tail:
            raise BuildError(f"the template's files do not fit in {size // MIB} MiB: make "
                             "<disk><size> larger") from error
        raise
    finally:
        # the sandbox had the body; it is the service's again
        os.chown(ctx.body_path, os.getuid(), os.getgid())
