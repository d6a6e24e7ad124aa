"""Apply a cloud plugin's `TargetContent` to a copy of a disk this plugin built.

The root file system is loop-mounted at its offset (inside a private mount namespace, so the
mount and its loop device cannot outlive the call) and changed in place: the target image is
the base image plus exactly the content, nothing rebuilt. Rebuilding from the JEOS cache instead
would rerun the template's commands and could pick newer package versions than the base image
has, which is not what a target image of that base image should be. The ESP's kernel and
initramfs are refreshed afterwards, in case the content changed them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildResult, TargetContent, Template

from . import releases, system
from .customise import apply_content
from .debcache import DebCache
from .disk import Layout
from .esp import copy_kernel
from .icicle import icicle, installed_packages
from .jeos import remove_tree
from .namespace import PrivateMounts
from .recipe import JeosRecipe
from .rootfs import RootFS
from .settings import Settings


def apply_target_content(ctx: BuildContext, template: Template, content: TargetContent,
                         disk: Path, parameters: Mapping[str, Any]) -> BuildResult | None:
    settings = Settings.read(template, parameters)
    release = releases.release(template.os.version)
    arch = releases.architecture(template.os.arch)
    debs = DebCache(ctx.cache_dir("debian-debs"), release.codename, arch.dpkg)
    layout = Layout.read(ctx, disk, arch)
    scratch = ctx.workdir / "debian-target"
    mountpoint = scratch / "root"
    mountpoint.mkdir(parents=True, exist_ok=True)
    try:
        with PrivateMounts() as mounts:
            ctx.progress(0, "customise: mounting the root file system")
            mounts.mount(ctx, disk, mountpoint, "loop", f"offset={layout.root.start}",
                         f"sizelimit={layout.root.size}")
            # The file system holds image ids; the sandbox works on trees of its own ids.
            ctx.adopt_tree(mountpoint, mounts.enter)
            root = RootFS(mounts, mountpoint, scratch)
            before = installed_packages(ctx, root)
            sources = _build_sources(release, arch, parameters, settings)
            if sources:
                ctx.log(f"target content comes from mirror {settings.mirror}")
            apply_content(ctx.scaled(2, 90), root, content, settings, debs, sources)
            after = installed_packages(ctx, root)
            manifest = icicle(ctx, root, template, after) if after != before else None
            system.finalize(ctx, root)
            ctx.progress(92, "disk: kernel and initramfs on the EFI system partition")
            copy_kernel(ctx, root, disk, layout.esp)
            ctx.release_tree(mountpoint, mounts.enter)
            ctx.run(mounts.wrap(["umount", mountpoint]))
    finally:
        remove_tree(scratch)
    ctx.progress(100, "complete")
    return None if manifest is None else BuildResult(icicle=manifest)


def _build_sources(release: releases.Release, arch: releases.Architecture,
                   parameters: Mapping[str, Any], settings: Settings) -> list[str]:
    """The apt sources of a mirror the request (or the operator) names for this target image,
    or none: then the packages come from the sources the base image was built with."""
    if not parameters["mirror"] or not settings.mirror:
        return []
    return JeosRecipe.of(release, arch, settings.mirror, settings).sources()
