"""What the installer guest said on its serial console, and what the plugin reads from it.

The console file is written by QEMU inside the sandbox; the host reads it only as a regular
file opened without following links, and at most `MAX_BYTES` of its end. ``%post`` prints the
package list (and ``<icicle><extra_command>``'s output) between the build's markers
(`imagefactory_fedora.kickstart.Markers`), and a failure marker when a step failed.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from imagefactory_core.plugin import BuildError

from .kickstart import Markers

MAX_BYTES = 64 * 1024**2
# Kernel messages may land between the lines %post prints: "[   12.345678] …".
_KERNEL_LINE = re.compile(r"^\s*\[\s*[0-9]+\.[0-9]+\]")


def read_console(path: Path) -> str:
    """The console text (the last `MAX_BYTES`), or "" when there is none."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, OSError):
        return ""
    with os.fdopen(fd, "rb") as console:
        info = os.fstat(console.fileno())
        if not stat.S_ISREG(info.st_mode):
            return ""
        console.seek(max(0, info.st_size - MAX_BYTES))
        data = console.read(MAX_BYTES)
    return data.decode("utf-8", "replace").replace("\r", "")


def _between(lines: list[str], begin: str, end: str) -> list[str] | None:
    starts = [i for i, line in enumerate(lines) if line.strip() == begin]
    if not starts:
        return None
    start = starts[-1] + 1
    stop = next((i for i in range(start, len(lines)) if lines[i].strip() == end), None)
    if stop is None:
        return None
    return [line.strip() for line in lines[start:stop]
            if line.strip() and not _KERNEL_LINE.match(line)]


def check_post(console: str, markers: Markers) -> None:
    """Raise `BuildError` when ``%post`` reported a failed step (with the output before it),
    or never finished."""
    lines = console.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(markers.failed + " "):
            before = "\n".join(lines[max(0, index - 25):index]).strip()
            raise BuildError(f"%post: {line[len(markers.failed) + 1:]}:\n{before}")
    if not any(line.strip() == markers.done for line in lines):
        tail = "\n".join(line for line in lines[-25:] if line.strip())
        raise BuildError("the guest powered off before the kickstart's %post finished (the "
                         f"installer failed?); last console lines:\n{tail}")


def packages(console: str, markers: Markers,
             with_extra: bool) -> list[tuple[str, str | None]]:
    """The (package, extra line) pairs the guest printed, in `rpm -qa`'s order."""
    lines = console.splitlines()
    names = _between(lines, markers.icicle_begin, markers.icicle_end)
    if names is None:
        raise BuildError("the guest printed no package list (ICICLE) on its console")
    if not with_extra:
        return [(name, None) for name in names]
    extras = _between(lines, markers.extra_begin, markers.extra_end) or []
    if len(extras) != len(names):
        raise BuildError(f"icicle extra_command printed {len(extras)} lines for {len(names)} "
                         "installed packages: it must print one line per package, in "
                         "rpm -qa's order")
    return list(zip(names, extras, strict=True))
