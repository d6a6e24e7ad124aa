"""The JEOS recipe: everything that decides the content of the bare OS tree, and so its cache key.

Two builds whose recipes are equal get the same tree, whatever their templates customise on top.
`JEOS_FORMAT` is part of the key: bump it whenever the code that makes a JEOS tree changes what
it puts in it, so that old trees are no longer reused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .releases import Architecture, Release
from .settings import Settings

JEOS_FORMAT = 3  # 2: trees owned on the host by the build sandbox's subordinate ids
# 3: packages from the package cache verified against the lists (debcache.py)


@dataclass(frozen=True)
class JeosRecipe:
    release: Release
    arch: Architecture
    mirror: str
    security_mirror: str | None
    components: tuple[str, ...]
    with_docs: bool
    initramfs_modules: tuple[str, ...] | None

    @classmethod
    def of(cls, release: Release, arch: Architecture, mirror: str,
           settings: Settings) -> JeosRecipe:
        return cls(release, arch, mirror, settings.security_mirror, settings.components,
                   settings.with_docs, settings.initramfs_modules)

    @property
    def packages(self) -> tuple[str, ...]:
        return (self.arch.kernel_package, *self.release.base_packages)

    def sources(self) -> list[str]:
        """One-line apt sources: the release and its updates from the mirror, security fixes
        from the security mirror when there is one."""
        components = " ".join(self.components)
        lines = [f"deb {self.mirror} {suite} {components}" for suite in self.release.mirror_suites]
        if self.security_mirror:
            lines.append(f"deb {self.security_mirror} {self.release.security_suite} {components}")
        return lines

    @property
    def key(self) -> str:
        """A directory name: readable prefix, then a digest of everything in the recipe."""
        identity = {
            "format": JEOS_FORMAT,
            "codename": self.release.codename,
            "arch": self.arch.dpkg,
            "sources": self.sources(),
            "packages": sorted(self.packages),
            "with_docs": self.with_docs,
            "initramfs_modules": self.initramfs_modules,
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return f"{self.release.codename}-{self.arch.dpkg}-{digest[:20]}"
