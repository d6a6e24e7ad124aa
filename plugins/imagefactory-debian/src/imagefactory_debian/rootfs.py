"""Commands and scripts inside a Debian root tree, the way apt and maintainer scripts expect.

Everything that runs code from the tree or that a template controls runs in the core's build
sandbox (`BuildContext.sandbox`, docs/security.md): root in the image, an unprivileged
subordinate uid on the host, the tree as ``/`` with no host path visible, its own namespaces,
a seccomp filter and the operator's limits. The tree is owned on the host by the sandbox's ids
(mmdebstrap's unshare mode makes it so). The sandbox is entered from the build's private mount
namespace, where the tree's overlay and the package cache are mounted. Steps that fetch
packages get the sandbox's egress proxy; the others no network at all.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from imagefactory_core.plugin import BuildContext

from .namespace import PrivateMounts

SCRIPTS = Path(__file__).parent / "scripts"
"""Shell scripts shipped with the plugin (installed as files: mmdebstrap runs some of them)."""

ENVIRONMENT = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LC_ALL": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "DEBCONF_NONINTERACTIVE_SEEN": "true",
}
"""What a Debian maintainer script expects, and nothing of the service's environment."""

SCRIPT = "/run/imagefactory/script"
"""Where `RootFS.run` shows its `script` argument."""
ARCHIVES = "/var/cache/apt/archives"
# A script with a #! line runs as a program: it is copied where it may be made executable.
_AS_PROGRAM = ('cp /run/imagefactory/script /run/imagefactory-script && '
               'chmod 0700 /run/imagefactory-script && exec /run/imagefactory-script "$@"')


class RootFS:
    """A root tree at `path` (as seen inside `mounts`); `scratch` is a host directory for the
    scripts handed to it; `hostname` is the host name commands see."""

    def __init__(self, mounts: PrivateMounts, path: Path, scratch: Path,
                 hostname: str = "debian") -> None:
        self.mounts = mounts
        self.path = path
        self.scratch = scratch
        self.hostname = hostname

    def run(self, ctx: BuildContext, argv: list[str | Path], *, input: bytes | None = None,
            timeout: float | None = None, capture: bool = False, network: bool = False,
            script: Path | None = None, archives: Path | None = None,
            egress_allow: tuple[str, ...] = (), egress_via: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the sandbox whose root is the tree (logged through `ctx`); `network`
        asks for the egress proxy (`egress_allow`: operator-chosen hosts it may reach besides
        the operator's allow-list; `egress_via`: the operator's proxy it goes through);
        `script` is a host file shown read-only at
        /run/imagefactory/script; `archives` a host directory shown as apt's archives."""
        sandbox = ctx.sandbox(self.path, network="egress" if network else "none",
                              inputs=[(script, SCRIPT)] if script else [],
                              outputs=[(archives, ARCHIVES)] if archives else [],
                              env=ENVIRONMENT, hostname=self.hostname, enter=self.mounts.enter,
                              egress_allow=egress_allow, egress_via=egress_via)
        return sandbox.run(argv, input=input, timeout=timeout, capture=capture)

    def run_script(self, ctx: BuildContext, script: Path, *args: str,
                   input: bytes | None = None, timeout: float | None = None,
                   capture: bool = False, network: bool = False,
                   ) -> subprocess.CompletedProcess[str]:
        """Run the script file `script` (a host path) in the tree, with its ``#!`` interpreter
        or /bin/sh."""
        with script.open("rb") as handle:
            program = handle.read(2) == b"#!"
        argv: list[str | Path] = (["/bin/sh", "-c", _AS_PROGRAM, "script", *args] if program
                                  else ["/bin/sh", SCRIPT, *args])
        return self.run(ctx, argv, input=input, timeout=timeout, capture=capture,
                        network=network, script=script)

    def run_text(self, ctx: BuildContext, body: str, *, timeout: float | None = None,
                 capture: bool = False, network: bool = False,
                 ) -> subprocess.CompletedProcess[str]:
        """Run the script `body` (a template's command) in the tree."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        script = self.scratch / f"command-{uuid.uuid4().hex}"
        script.write_text(body)
        script.chmod(0o644)
        try:
            return self.run_script(ctx, script, timeout=timeout, capture=capture,
                                   network=network)
        finally:
            script.unlink()

    def write_file(self, ctx: BuildContext, path: str, data: bytes) -> None:
        """Write `path` in the tree as a process in the tree would: links are followed inside
        the tree, never out to the host; missing directories are created."""
        self.run(ctx, ["/bin/sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", path],
                 input=data)
