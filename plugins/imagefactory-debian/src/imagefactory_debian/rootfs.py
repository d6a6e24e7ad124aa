"""Commands and scripts inside a Debian root tree, the way apt and maintainer scripts expect.

Each call runs ``scripts/in-root.sh`` in fresh mount, PID and UTS namespaces nested in the
build's private mount namespace: for the duration of that one command the tree is the root of
its own mount namespace (pivot_root, not chroot) with /proc, /sys, a private /dev and /run, and
its own host name; the command runs without the capabilities that reach past the tree, because
template commands are untrusted input; whatever it started is killed when it returns
(``--kill-child`` also makes a cancelled build's SIGTERM end the whole tree of processes at
once). The tree itself stays free of mounts, so it can be turned into a file system
(``mkfs.ext4 -d``) at any time.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from imagefactory_core.plugin import BuildContext

from .namespace import PrivateMounts

SCRIPTS = Path(__file__).parent / "scripts"
"""Shell scripts shipped with the plugin (installed as files: mmdebstrap runs some of them)."""

_ISOLATE = ["unshare", "--mount", "--pid", "--uts", "--fork", "--kill-child", "--"]


class RootFS:
    """A root tree at `path` (as seen inside `mounts`); `scratch` is a host directory for
    the scripts handed to it."""

    def __init__(self, mounts: PrivateMounts, path: Path, scratch: Path) -> None:
        self.mounts = mounts
        self.path = path
        self.scratch = scratch

    def run(self, ctx: BuildContext, argv: list[str | Path], *, input: bytes | None = None,
            timeout: float | None = None, capture: bool = False
            ) -> subprocess.CompletedProcess[str]:
        """Run `argv` chrooted into the tree (logged through `ctx`)."""
        in_root = SCRIPTS / "in-root.sh"
        return ctx.run(self.mounts.wrap([*_ISOLATE, "/bin/sh", in_root, self.path, *argv]),
                       input=input, timeout=timeout, capture=capture)

    def run_script(self, ctx: BuildContext, script: Path, *args: str,
                   input: bytes | None = None, timeout: float | None = None,
                   capture: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the script file `script` (a host path) in the tree, with its ``#!`` interpreter
        or /bin/sh."""
        return self.run(ctx, ["--script", script, *args], input=input, timeout=timeout,
                        capture=capture)

    def run_text(self, ctx: BuildContext, body: str, *, timeout: float | None = None,
                 capture: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the script `body` (a template's command) in the tree."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        script = self.scratch / f"command-{uuid.uuid4().hex}"
        script.write_text(body)
        try:
            return self.run_script(ctx, script, timeout=timeout, capture=capture)
        finally:
            script.unlink()

    def write_file(self, ctx: BuildContext, path: str, data: bytes) -> None:
        """Write `path` in the tree as a process in the tree would: links are followed inside
        the tree, never out to the host; missing directories are created."""
        self.run(ctx, ["/bin/sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", path],
                 input=data)
