"""Build a JEOS tree (the bare OS: minbase, kernel, systemd, udev) with mmdebstrap.

mmdebstrap runs in its unshare mode as the unprivileged system user ``imagefactory-build``,
whose subordinate ids are the build sandbox's (``scripts/bootstrap.sh`` sets both up): it
installs the packages as root of its own user namespace, so no maintainer script runs as host
root, and the tree comes out owned on the host by the sandbox's ids, ready to be a sandbox root
(``jeos-finish.sh`` and everything after run in the sandbox). Run by host root, the unshare mode
would map root to root. The user reaches the tree through a bind mount under /run in the build's
private mount namespace (the cache directory itself is root's alone), where the package cache is
mounted too; nothing of it outlives the build. Choices made for speed, each worth seconds:

* packages come from the package cache (`cached_archives`), each checked against the signed
  lists first (``verify-archives.sh``, a setup hook);
* the package lists start as the last JEOS tree's (`aptlists`): apt-get update only asks
  whether they changed;
* ``force-unsafe-io``: dpkg does not fsync every file, the tree is turned into a file system later
  anyway;
* merged /usr is set up by mmdebstrap's hook instead of the usrmerge package (and perl);
* the initramfs is built once, at the end (``defer-initramfs.sh``, ``jeos-finish.sh``), with a
  driver list for virtual and cloud machines instead of every storage driver.
"""

from __future__ import annotations

import contextlib
import pwd
import shlex
from pathlib import Path

from imagefactory_core.plugin import BuildContext, BuildError

from .aptlists import LISTS, ListsCache, prefixes
from .debcache import ARCHIVES, DebCache, cached_archives
from .namespace import PrivateMounts
from .phases import marked, phase
from .progress import Milestone, watching
from .recipe import JeosRecipe
from .rootfs import SCRIPTS, RootFS

MERGED_USR_HOOKS = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"
BUILD_USER = "imagefactory-build"
STAGES = Path("/run/imagefactory-jeos")
"""Where the build user finds trees being made: mount points, in builds' mount namespaces."""

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
# mmdebstrap's words for the start of each of its phases (`imagefactory_debian.phases`).
PHASES = [
    ("I: downloading packages with apt", "mmdebstrap-download"),
    ("I: extracting archives", "mmdebstrap-extract"),
    ("I: installing essential packages", "mmdebstrap-essential"),
    ("I: installing remaining packages", "mmdebstrap-rest"),
]


def build_jeos(ctx: BuildContext, mounts: PrivateMounts, recipe: JeosRecipe, tree: Path,
               debs: DebCache, lists: ListsCache, apt_proxy: str | None,
               scratch: Path) -> None:
    """Make the JEOS tree of `recipe` in the empty directory `tree` (`scratch`: a host
    directory for temporary files)."""
    _check_build_user()
    (tree / ARCHIVES).mkdir(parents=True)  # the tree is new and empty: nothing to follow
    sources = prefixes(recipe.sources())
    ctx.log(f"package lists: {lists.seed(tree / LISTS, sources)} from the last JEOS tree")
    ctx.adopt_tree(tree)
    stage = STAGES / tree.name
    stage.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        with phase(ctx, "jeos-mmdebstrap"), cached_archives(ctx, scratch, debs) as archives:
            mounts.mount(ctx, tree, stage, "bind")
            mounts.mount(ctx, archives, stage / ARCHIVES, "bind")
            try:
                with marked(ctx, "mmdebstrap-lists", PHASES) as timed:
                    watching(timed, _MILESTONES).run(
                        mounts.wrap(_as_build_user(_mmdebstrap(recipe, stage, apt_proxy))))
            finally:
                ctx.run(mounts.wrap(["umount", "--recursive", stage]))
    finally:
        with contextlib.suppress(OSError):
            stage.rmdir()
    lists.harvest(tree, sources)
    with phase(ctx, "jeos-finish"):
        ctx.progress(90, "configure: initramfs, network, boot hooks")
        modules = recipe.initramfs_modules
        RootFS(mounts, tree, scratch).run_script(
            ctx, SCRIPTS / "jeos-finish.sh", *(modules if modules is not None else ("most",)))
    ctx.progress(100)


def _check_build_user() -> None:
    try:
        pwd.getpwnam(BUILD_USER)
    except KeyError:
        raise BuildError(f"the system user {BUILD_USER} that runs mmdebstrap unprivileged is "
                         "missing: run scripts/bootstrap.sh (it adds it, with the build "
                         "sandbox's subordinate ids)") from None


def _as_build_user(argv: list[str]) -> list[str]:
    """`argv` run as the build user with a clean environment."""
    return ["setpriv", f"--reuid={BUILD_USER}", f"--regid={BUILD_USER}", "--clear-groups",
            "--", "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp",
            "TMPDIR=/tmp", *argv]


def _mmdebstrap(recipe: JeosRecipe, tree: Path, apt_proxy: str | None) -> list[str]:
    def hook(name: str, *words: str) -> str:
        return " ".join(["sh", shlex.quote(str(SCRIPTS / name)), '"$1"', *words])

    argv = [
        "mmdebstrap", "--verbose", "--mode=unshare", "--variant=minbase",
        f"--architectures={recipe.arch.dpkg}",
        f"--include={','.join(recipe.packages)}",
        f"--hook-dir={MERGED_USR_HOOKS}",
        # after the merged-usr hook's apt-get update: the cached packages checked against the
        # lists before anything is downloaded or installed (debcache.py)
        f"--setup-hook={hook('verify-archives.sh')}",
        "--dpkgopt=force-unsafe-io",
        '--aptopt=Acquire::Languages "none"',
        f"--essential-hook={hook('defer-initramfs.sh')}",
        # The tree already has the package cache's mount point. Keep what apt downloads for the
        # cache, and the package lists for the customisation's apt-get update (each image is
        # cleaned of them later).
        "--skip=check/empty,essential/unlink,cleanup/apt/cache,cleanup/apt/lists",
    ]
    if not recipe.with_docs:
        argv += [f"--setup-hook={hook('no-docs.sh')}",
                 f"--extract-hook={hook('no-docs.sh', 'prune')}"]
    if apt_proxy:
        argv.append(f'--aptopt=Acquire::http::Proxy "{apt_proxy}"')
    return [*argv, recipe.release.codename, str(tree), *recipe.sources()]
