"""Build a base image: JEOS tree (cached), customisation on an overlay, then the raw disk.

Phases and their share of ``percent_complete``:

====== ============================================================================
0-2    settings, release, JEOS cache lookup
2-55   JEOS tree with mmdebstrap (download, unpack, configure, initramfs) — skipped
       when the JEOS cache has the tree
55-80  customise: host name, file systems, root password, then the template's
       repositories, precommands, packages, files, commands; ICICLE
80-100 disk: partition table, EFI system partition with both boot loaders, ext4 root
====== ============================================================================

Each phase's wall time is logged as it ends (``phase root-fs: 1.8 s``, see `phases`).

Whatever happens, the build leaves nothing behind but its image: mounts live in the build's
private mount namespace, its scratch directory is removed, and a failed or cancelled build
removes the partial image body.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildError, BuildResult, Template

from . import releases, system
from .aptlists import ListsCache
from .bootstrap import build_jeos
from .customise import customise
from .debcache import DebCache
from .disk import Layout, make_root_fs, partition
from .esp import BootConfig, make_esp
from .icicle import icicle, installed_packages
from .jeos import JeosCache, JeosTree, remove_tree
from .namespace import PrivateMounts
from .overlay import Overlay
from .phases import phase
from .recipe import JeosRecipe
from .rootfs import RootFS
from .rootimage import prepare_disk, update_root_fs
from .settings import Settings


def create_base_image(ctx: BuildContext, template: Template,
                      parameters: Mapping[str, Any]) -> BuildResult:
    if template.os.rootpw:
        ctx.add_secret(template.os.rootpw)
    settings = Settings.read(template, parameters)
    if settings.mirror is None:
        raise BuildError("the debian plugin installs from a package mirror: use <install "
                         "type='url'><url>http://deb.debian.org/debian</url></install> (or "
                         "the mirror parameter); ISO installs are not supported")
    release = releases.release(template.os.version)
    arch = releases.architecture(template.os.arch)
    recipe = JeosRecipe.of(release, arch, settings.mirror, settings)
    layout = Layout.for_size(template.disk_size)
    debs = DebCache(ctx.cache_dir("debian-debs"), release.codename, arch.dpkg)
    lists = ListsCache(ctx.cache_dir("debian-lists"))
    jeos = JeosCache(ctx.cache_dir("debian-jeos"), settings.jeos_cache_entries)
    scratch = ctx.workdir / "debian"
    ctx.progress(1, f"JEOS {recipe.key}: Debian {release.codename} {arch.dpkg} from "
                    f"{settings.mirror}")
    try:
        with phase(ctx, "total"), PrivateMounts() as mounts:
            def make(tree: Path) -> None:
                build_jeos(ctx.scaled(2, 55), mounts, recipe, tree, debs, lists,
                           settings.apt_proxy, scratch)

            with jeos.use(ctx, recipe.key, make) as base:
                return _image(ctx, mounts, template, settings, recipe, layout, base, debs,
                              scratch)
    except BaseException:
        ctx.body_path.unlink(missing_ok=True)
        raise
    finally:
        remove_tree(scratch)


def _image(ctx: BuildContext, mounts: PrivateMounts, template: Template, settings: Settings,
           recipe: JeosRecipe, layout: Layout, base: JeosTree, debs: DebCache,
           scratch: Path) -> BuildResult:
    ctx.check_cancelled()
    identity = system.Identity.new(template.name)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="disk") as pool:
        # the disk, with the JEOS image's file system, on the other core while customising
        disk_ready = pool.submit(prepare_disk, ctx, base.path, ctx.body_path, layout,
                                 recipe.arch)
        with phase(ctx, "configure"):
            layers = Overlay(base.path, scratch)
            layers.mount(ctx, mounts)
            root = RootFS(mounts, layers.root, scratch, identity.hostname)
            ctx.progress(55, "customise: host name, file systems, root password")
            system.configure(ctx, root, identity, template.os.rootpw)
        with phase(ctx, "customise"):
            customise(ctx.scaled(56, 77), root, template, settings, debs)
        with phase(ctx, "icicle"):
            ctx.progress(77, "customise: ICICLE")
            packages = installed_packages(ctx, root)
            manifest = icicle(ctx, root, template, packages)
            debs.refresh([p.deb_file for p in packages], settings.deb_cache_max_age_days)
        with phase(ctx, "finalize"):
            system.finalize(ctx, root)

        with phase(ctx, "partition"):
            ctx.progress(80, "disk: partition table")
            holds_image = disk_ready.result()
    kernel = scratch / "kernel"
    with phase(ctx, "root-fs"):
        ctx.progress(81, "disk: root file system")
        if not (holds_image and update_root_fs(ctx, mounts, layers, ctx.body_path, layout.root,
                                               identity.root_uuid, kernel)):
            partition(ctx, ctx.body_path, layout, recipe.arch)  # nothing of the attempt
            make_root_fs(ctx, mounts, layers.root, ctx.body_path, layout.root,
                         identity.root_uuid, kernel)
    with phase(ctx, "esp"):
        ctx.progress(96, "disk: EFI system partition, boot loaders, kernel")
        boot = BootConfig(recipe.arch, identity.root_uuid, settings.kernel_cmdline)
        make_esp(ctx, ctx.body_path, layout.esp, identity.esp_volume_id, boot,
                 scratch / "esp", kernel)
    ctx.progress(100, "complete")
    return BuildResult(icicle=manifest, properties={
        "disk_format": "raw",
        "partition_table": "gpt",
        "boot": "bios+uefi" if recipe.arch.bios else "uefi",
        "root_fs_uuid": identity.root_uuid,
        "debian_release": recipe.release.codename,
        "jeos": recipe.key,
        "jeos_cache": "hit" if base.hit else "miss",
    })
