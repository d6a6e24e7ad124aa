"""`wrap`: the command line that runs a command in a sandbox."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .host import check_host
from .ids import subordinate_ids
from .spec import SandboxSpec

LAUNCHER = "imagefactory_core.sandbox.launch"


def wrap(spec: SandboxSpec, argv: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The argv of a launcher that runs `argv` inside the sandbox `spec` describes.

    Run it as an ordinary command (``BuildContext.run``); killing its process group ends the
    whole sandbox. Raises `SandboxUnavailable` at once when the host cannot run sandboxes.
    The launcher prints ``sandbox: …`` lines (limits in force, egress decisions, failures) on
    its standard error, and exits with the command's status, or 124 (wall-clock limit), 125
    (set-up failed or tree over its size limit), 127 (command not found).
    """
    # Imported here, not above: the launcher imports this package, and this module's import
    # would bring it libseccomp's compiler (pyseccomp), which only the caller needs.
    from .syscall_filter import compiled_filter

    check_host()
    ids = spec.ids or subordinate_ids()
    return [sys.executable, "-I", "-m", LAUNCHER, spec.with_ids(ids).to_json(),
            compiled_filter().hex(), "--",
            *(os.fspath(arg) for arg in argv)]
