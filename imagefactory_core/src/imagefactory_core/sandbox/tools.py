"""Host tools run over an image tree inside a sandbox, so that they see the image's ids.

A tree is owned on the host by the sandbox's id range (see `imagefactory_core.sandbox.ids`).
``mkfs.ext4 -d`` run on the host would record those shifted ids in the file system; run in a
sandbox whose root is an empty tmpfs, with the host's programs read-only and the tree mounted
read-only at ``/tree``, it sees every file with its image owner and records that (and file
capabilities come out right too). Nothing from the tree is executed: the program is the host's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .spec import Bind, SandboxSpec
from .wrap import wrap

HOST_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc/ld.so.cache")
TREE_INSIDE = "/tree"
IMAGE_INSIDE = "/image"


def host_tool_spec(inputs: Sequence[Bind] = (), outputs: Sequence[Bind] = (),
                   base: SandboxSpec | None = None) -> SandboxSpec:
    """A sandbox with the host's programs (read-only) and nothing else but the binds given.

    `base` supplies everything else (limits, ids, environment); its root is ignored.
    """
    system = tuple(Bind(Path(path).resolve(), path) for path in HOST_SYSTEM
                   if os.path.exists(path))
    return replace(base or SandboxSpec(root=None), root=None,
                   inputs=system + tuple(inputs), outputs=tuple(outputs))


def mkfs_ext4(tree: Path, image: Path, *, options: Sequence[str] = (),
              base: SandboxSpec | None = None) -> list[str]:
    """The command that writes an ext4 file system of `tree`'s content into the file `image`.

    `image` must exist (its size is the file system's unless `options` say otherwise); the
    launcher hands it to the sandbox's root. `options` go to mkfs.ext4 (``-L``, ``-U``, ``-E``).
    """
    spec = host_tool_spec([Bind(tree, TREE_INSIDE)], [Bind(image, IMAGE_INSIDE)], base)
    return wrap(spec, ["mkfs.ext4", "-q", "-F", "-d", TREE_INSIDE, *options, IMAGE_INSIDE])
