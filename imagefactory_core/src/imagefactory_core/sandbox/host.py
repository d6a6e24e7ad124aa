"""Whether this host can run sandboxes, with what to do about it when it cannot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import SandboxUnavailable

MAX_USER_NAMESPACES = Path("/proc/sys/user/max_user_namespaces")


def check_host(max_user_namespaces: Path = MAX_USER_NAMESPACES) -> None:
    """Raise `SandboxUnavailable` naming the first thing the host lacks."""
    if os.geteuid() != 0:
        raise SandboxUnavailable("sandboxes are started by root (the service): it maps the "
                                 "subordinate ids and makes the cgroups")
    for tool in ("newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            raise SandboxUnavailable(f"{tool} is missing: install Debian's uidmap package "
                                     "(scripts/bootstrap.sh does)")
    try:
        allowed = int(max_user_namespaces.read_text())
    except FileNotFoundError:
        raise SandboxUnavailable("this kernel has no user namespaces (CONFIG_USER_NS)") from None
    if allowed == 0:
        raise SandboxUnavailable("user namespaces are disabled (user.max_user_namespaces = 0):"
                                 " set it to 10000 or more with sysctl")
