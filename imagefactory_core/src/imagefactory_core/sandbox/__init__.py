"""The build sandbox: where everything an image tree or a template controls runs.

A process in a sandbox is root in the image tree and an unprivileged subordinate uid on the
host, in its own user, mount, PID, IPC, UTS, cgroup and network namespaces, with few
capabilities, ``no_new_privs`` and a seccomp filter; it sees the tree as ``/`` and no host path;
its memory, processes, time and tree size are limited; its network is loopback only, or an
HTTP proxy that applies an egress policy. See docs/security.md.

Describe a sandbox with `SandboxSpec`, get the command line with `wrap`, and run that like any
command (``BuildContext.run``).
"""

from .errors import SandboxSetupError, SandboxUnavailable
from .host import check_host
from .ids import IdRange, shift_into_range, shift_out_of_range, subordinate_ids
from .policy import EgressPolicy
from .spec import Bind, SandboxLimits, SandboxSpec
from .tools import host_tool_spec, mkfs_ext4
from .wrap import wrap

__all__ = [
    "Bind", "EgressPolicy", "IdRange", "SandboxLimits", "SandboxSetupError", "SandboxSpec",
    "SandboxUnavailable", "check_host", "host_tool_spec", "mkfs_ext4", "shift_into_range",
    "shift_out_of_range", "subordinate_ids", "wrap",
]
