"""A private mount namespace per build: no mount a build makes can outlive it or leak.

Everything this plugin mounts (mmdebstrap's /proc and /dev in the tree, the overlay over the
cached JEOS tree, the loop-mounted root of a disk) is mounted inside a mount namespace that only
exists for one build. The host never sees those mounts, so a tree can be deleted with ``rm -rf``
without any risk of descending into a bind-mounted /dev. The namespace is held open by a small
process that exits when this build closes its standard input, or when this process dies for
any reason: the kernel then unmounts everything in it and loop devices mounted with ``-o loop``
are detached (autoclear). Commands enter the namespace with nsenter.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from imagefactory_core.plugin import BuildContext, BuildError

_HOLDER = ["unshare", "--mount", "--propagation", "private", "--",
           "sh", "-c", "echo ready && read _"]


class PrivateMounts:
    """Use as a context manager; `wrap` makes a command run inside the namespace."""

    def __init__(self) -> None:
        self._holder = subprocess.Popen(_HOLDER, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, start_new_session=True)
        assert self._holder.stdout is not None
        if self._holder.stdout.readline() != b"ready\n":
            error = self._holder.communicate(timeout=10)[1].decode(errors="replace")
            raise BuildError(f"cannot create a private mount namespace (unshare): {error}")
        self.enter = ["nsenter", f"--mount=/proc/{self._holder.pid}/ns/mnt", "--"]

    def __enter__(self) -> PrivateMounts:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """End the namespace: its mounts go with it."""
        if self._holder.poll() is None:
            assert self._holder.stdin is not None
            self._holder.stdin.close()
            try:
                self._holder.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._holder.kill()
                self._holder.wait()
        for stream in (self._holder.stdout, self._holder.stderr):
            if stream is not None:
                stream.close()

    def wrap(self, argv: Sequence[str | os.PathLike[str]]) -> list[str | os.PathLike[str]]:
        """`argv` made to run inside the namespace (for `ctx.run`)."""
        return [*self.enter, *argv]

    def mount(self, ctx: BuildContext, source: str | Path, target: Path, *options: str,
              fstype: str | None = None) -> None:
        """Mount inside the namespace; the mount lasts until `close` at the latest."""
        argv: list[str | os.PathLike[str]] = ["mount"]
        if fstype:
            argv += ["-t", fstype]
        if options:
            argv += ["-o", ",".join(options)]
        ctx.run(self.wrap([*argv, source, target]))
