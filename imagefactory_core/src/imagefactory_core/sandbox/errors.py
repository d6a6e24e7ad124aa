"""What goes wrong with a sandbox, in words an operator can act on."""

from __future__ import annotations


class SandboxUnavailable(RuntimeError):
    """The host lacks something every sandbox needs (a subordinate id range, newuidmap, user
    namespaces); the message names it and how to provide it."""


class SandboxSetupError(RuntimeError):
    """One sandbox could not be set up (for example a mount point in the image tree is a
    symbolic link); raised inside the launcher and reported on its standard error."""
