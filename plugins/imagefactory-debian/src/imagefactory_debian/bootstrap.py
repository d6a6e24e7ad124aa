"""Build a JEOS tree (the bare OS: minbase, kernel, systemd, udev) with mmdebstrap.

mmdebstrap runs in the build's private mount namespace (its /proc, /sys, /dev mounts in the tree
cannot outlive the build) and in root mode. What it runs comes from the recipe alone: the
packages of the release (signed, checked against the host's Debian keyring; the mirror URL is
checked by grammar), never anything of a template's. (Its unshare mode, run by host root, maps
root to root and so isolates nothing more.) The finished tree is then shifted into the build
sandbox's subordinate ids, and everything after that, ``jeos-finish.sh`` included, runs in the
sandbox. Choices made for speed, each worth seconds:

* packages come from the package cache (`cached_archives`);
* ``force-unsafe-io``: dpkg does not fsync every file, the tree is turned into a file system later
  anyway;
* merged /usr is set up by mmdebstrap's hook instead of the usrmerge package (and perl);
* the initramfs is built once, at the end (``defer-initramfs.sh``, ``jeos-finish.sh``), with a
  driver list for virtual and cloud machines instead of every storage driver.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from imagefactory_core.plugin import BuildContext

from .debcache import ARCHIVES, DebCache, cached_archives
from .namespace import PrivateMounts
from .progress import Milestone, watching
from .recipe import JeosRecipe
from .rootfs import SCRIPTS, RootFS

MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"

# mmdebstrap's and apt's own words for their phases, with the progress they stand for.
_MILESTONES = [
    Milestone("I: running apt-get update", 5, "download: package lists"),
    Milestone("I: downloading packages with apt", 10, "download: essential packages"),
    Milestone("I: extracting archives", 25, "unpack: essential packages"),
    Milestone("I: installing essential packages", 35, "configure: essential packages"),
    Milestone("I: installing remaining packages", 50, "download: kernel, systemd, udev"),
    Milestone("Unpacking ", 60, "unpack: kernel, systemd, udev", after_previous=True),
    Milestone("Setting up ", 75, "configure: kernel, systemd, udev", after_previous=True),
]


def build_jeos(ctx: BuildContext, mounts: PrivateMounts, recipe: JeosRecipe, tree: Path,
               debs: DebCache, apt_proxy: str | None, scratch: Path) -> None:
    """Make the JEOS tree of `recipe` in the empty directory `tree` (`scratch`: a host
    directory for temporary files)."""
    (tree / ARCHIVES).mkdir(parents=True)  # the tree is new and empty: nothing to follow
    with cached_archives(ctx, scratch, debs) as archives:
        mounts.mount(ctx, archives, tree / ARCHIVES, "bind")
        try:
            watching(ctx, _MILESTONES).run(mounts.wrap(_mmdebstrap(recipe, tree, apt_proxy)))
        finally:
            ctx.run(mounts.wrap(["umount", tree / ARCHIVES]))
    ctx.progress(88, "configure: handing the tree to the build sandbox")
    ctx.adopt_tree(tree)
    ctx.progress(90, "configure: initramfs, network, boot hooks")
    modules = recipe.initramfs_modules
    RootFS(mounts, tree, scratch).run_script(ctx, SCRIPTS / "jeos-finish.sh",
                                             *(modules if modules is not None else ("most",)))
    ctx.progress(100)


def _mmdebstrap(recipe: JeosRecipe, tree: Path, apt_proxy: str | None) -> list[str]:
    def hook(name: str) -> str:
        return f'sh {shlex.quote(str(SCRIPTS / name))} "$1"'

    argv = [
        "mmdebstrap", "--verbose", "--mode=root", "--variant=minbase",
        f"--architectures={recipe.arch.dpkg}",
        f"--include={','.join(recipe.packages)}",
        f"--hook-dir={MERGED_USR_HOOKS}",
        "--dpkgopt=force-unsafe-io",
        '--aptopt=Acquire::Languages "none"',
        f"--essential-hook={hook('defer-initramfs.sh')}",
        # The tree already has the package cache's mount point. Keep what apt downloads for the
        # cache, and the package lists for the customisation's apt-get update (each image is
        # cleaned of them later).
        "--skip=check/empty,essential/unlink,cleanup/apt/cache,cleanup/apt/lists",
    ]
    if not recipe.with_docs:
        argv.append(f"--setup-hook={hook('no-docs.sh')}")
    if apt_proxy:
        argv.append(f'--aptopt=Acquire::http::Proxy "{apt_proxy}"')
    return [*argv, recipe.release.codename, str(tree), *recipe.sources()]
