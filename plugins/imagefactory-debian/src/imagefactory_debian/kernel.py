"""The kernel and initramfs of a tree, as host files for the EFI system partition.

A command in a build sandbox copies the tree's ``/vmlinuz`` and ``/initrd.img`` (links resolved
inside the sandbox, never on the host) into an output directory; the host then takes what it
wrote only as regular files, opened without following links, so a tree cannot make host code
read a host file through a link it planted.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from imagefactory_core.plugin import BuildError

KERNEL_FILES = ("vmlinuz", "initrd.img")
COPY_FROM_TREE = "cp -L /tree/vmlinuz /tree/initrd.img /kernel/"
"""The shell command that copies them, in a sandbox showing the tree at /tree and the
`kernel_output` directory at /kernel (it runs before the sandbox's own tool)."""


def kernel_output(into: Path) -> Path:
    """A new, empty directory for a sandbox to copy the kernel and initramfs into, beside the
    new, empty directory `into` that `take_kernel_output` fills."""
    out = into.with_name(into.name + "-sandbox")
    for directory in (into, out):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    return out


def take_kernel_output(out: Path, into: Path) -> Path:
    """Copy what a sandbox wrote into `out` to `into`, regular files only; return `into`."""
    for name in KERNEL_FILES:
        _take_regular(out, name, into / name)
    shutil.rmtree(out)
    return into


def _take_regular(directory: Path, name: str, target: Path) -> None:
    """Copy `directory`/`name`, which a sandbox wrote, only if it is a regular file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(directory / name, flags)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOENT):
            raise BuildError(f"the image has no /{name} the boot loaders could load") from None
        raise
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise BuildError(f"the image's /{name} is not a regular file")
        with target.open("xb") as copy:
            shutil.copyfileobj(source, copy, 1 << 20)
