"""How much disk an image tree uses: the launcher's measure for `SandboxLimits.tree_mib`.

A loop-mounted scratch file system or project quotas would enforce the limit in the kernel,
but they depend on the host's file system and change how trees are made and shifted; walking
the tree (allocated blocks, hard links once, never following a link) works on any host, costs
a fraction of a second for a Debian tree, and is repeated while the sandbox runs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def tree_usage(root: Path) -> int:
    """Bytes allocated to files below `root` (which may be changing while it is measured)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for _, dirs, files, dir_fd in os.fwalk(root, follow_symlinks=False):
        total += os.fstat(dir_fd).st_blocks * 512
        for name in files + dirs:
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):
                continue
            if info.st_nlink > 1:
                key = (info.st_dev, info.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += info.st_blocks * 512
    return total
