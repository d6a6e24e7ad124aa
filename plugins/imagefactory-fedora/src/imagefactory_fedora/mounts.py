"""A private mount namespace for one step: its mounts can neither outlive it nor show on the
host.

The namespace is held by a small process (``unshare --mount``) that exits when its standard
input closes or this process dies; the kernel then unmounts everything in it, and loop
devices mounted with ``-o loop`` are detached. Commands enter it with nsenter.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType

from imagefactory_core.plugin import BuildContext, BuildError


class PrivateMounts:
    def __init__(self) -> None:
        self._holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
             "echo ready && read _"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        assert self._holder.stdout is not None
        if self._holder.stdout.readline() != b"ready\n":
            error = self._holder.communicate(timeout=10)[1].decode(errors="replace")
            raise BuildError(f"cannot create a private mount namespace (unshare): {error}")
        self.enter = ["nsenter", f"--mount=/proc/{self._holder.pid}/ns/mnt", "--"]

    def __enter__(self) -> PrivateMounts:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
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

    def mount_partition(self, ctx: BuildContext, disk: Path, offset: int, size: int,
                        target: Path) -> None:
        ctx.run([*self.enter, "mount", "-o", f"loop,offset={offset},sizelimit={size}",
                 str(disk), str(target)])

    def unmount(self, ctx: BuildContext, target: Path) -> None:
        ctx.run([*self.enter, "umount", str(target)])
