"""Where a build's time goes: each phase's wall time, one line per phase in the build log.

The lines read ``phase <name>: 12.3 s`` (`line`), so that an operator reading a slow build's
log, and ``bench/base_build`` taking medians over several builds (`parse`), see the same figures.
A phase that fails logs nothing: the build's error says where it stopped.

Phases of a base image, in order (``mmdebstrap-*`` and ``jeos-*`` only when the JEOS cache
lacks the tree):

===================== ========================================================================
mmdebstrap-lists      mmdebstrap's setup, apt-get update, the package cache's check
mmdebstrap-download   the essential packages' download
mmdebstrap-extract    their unpacking with tar
mmdebstrap-essential  their installation with dpkg (unpacked again, configured)
mmdebstrap-rest       the other packages (kernel, systemd, udev …): download, install
jeos-mmdebstrap       all of mmdebstrap (the five above), the package cache's bookkeeping
jeos-finish           the initramfs, networking and boot hooks (``jeos-finish.sh``)
configure             overlay over the JEOS tree; host name, file systems, root password
customise             the template's repositories, precommands, packages, files, commands
icicle                the installed packages, ICICLE, package cache bookkeeping
finalize              what must differ between machines, apt's lists and caches removed
partition             the sparse disk, its partition table and the JEOS image copied into the
                      root partition (made on the other core while customising: the phase is
                      what remains to wait for)
root-fs               the root file system: the JEOS image changed by debugfs (``rootimage``),
                      or ``mkfs.ext4 -d`` of the tree at the root partition's offset
esp                   the EFI system partition: both boot loaders, kernel, initramfs
total                 the whole build
===================== ========================================================================
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from imagefactory_core.plugin import BuildContext

_LINE = re.compile(r"phase (?P<name>[a-z0-9-]+): (?P<seconds>\d+\.\d) s")


def line(name: str, seconds: float) -> str:
    return f"phase {name}: {seconds:.1f} s"


@contextmanager
def phase(ctx: BuildContext, name: str) -> Iterator[None]:
    """Log the wall time of the block as phase `name`, when it completes."""
    began = time.monotonic()
    yield
    ctx.log(line(name, time.monotonic() - began))


@contextmanager
def marked(ctx: BuildContext, first: str,
           marks: Sequence[tuple[str, str]]) -> Iterator[BuildContext]:
    """Phases of one long command, told by its output: a context like `ctx` whose log ends the
    current phase (`first` at the start) and begins the next when a line starts with the
    prefix of the next of `marks` ((prefix, name of the phase it begins) in order; marks that
    never show are skipped). The last phase ends with the block."""
    forward = ctx.log_sink
    remaining = list(marks)
    current, began = first, time.monotonic()

    def sink(text: str) -> None:
        nonlocal current, began
        forward(text)
        for index, (prefix, name) in enumerate(remaining):
            if text.startswith(prefix):
                now = time.monotonic()
                forward(line(current, now - began))
                current, began = name, now
                del remaining[: index + 1]
                break

    timed = copy.copy(ctx)
    timed.log_sink = sink
    yield timed
    forward(line(current, time.monotonic() - began))


def parse(lines: Iterable[str]) -> dict[str, float]:
    """The phases of a build log, in order, with their seconds."""
    found = {}
    for text in lines:
        match = _LINE.fullmatch(text)
        if match:
            found[match["name"]] = float(match["seconds"])
    return found
