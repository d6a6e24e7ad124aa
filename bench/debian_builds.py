"""The Debian builds `base_build` and `image_size` compare: imagefactory's debian plugin, mkosi
14 (Debian's package) and the limit (bare mmdebstrap, then ``mkfs.ext4 -d``), all of one
package set from one mirror.

The package set is the plugin's own JEOS recipe for bookworm (a kernel, systemd, systemd-sysv,
udev and zstd on minbase), without documentation (mkosi's default ``WithDocs=no``; the plugin's
``with_docs=false``). mkosi 14 cannot make a bootable disk on this host, so it builds
``Format=gpt_ext4`` with ``Bootable=no`` (no initramfs, no boot loader), while imagefactory's
image is bootable under BIOS and UEFI (initramfs, GRUB and syslinux on an EFI system partition).
mkosi runs in a private mount namespace with a tmpfs on /run and ``--nspawn-keep-unit``, because
this host has no systemd (systemd-nspawn needs both); that costs it nothing measurable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import imagefactory_debian
from imagefactory_core.plugin import parse_template
from imagefactory_core.testing import make_build_context, plugin_parameters
from imagefactory_debian import imagefactory_create_base_image, phases, releases
from imagefactory_debian.bootstrap import MERGED_USR_HOOKS, PHASES
from imagefactory_debian.disk import Layout
from imagefactory_debian.recipe import JeosRecipe
from imagefactory_debian.rootfs import SCRIPTS
from imagefactory_debian.settings import Settings

DISK_SIZE = 3 << 30
MKE2FS_CONF = SCRIPTS / "mke2fs.conf"  # the plugin's, as its root file systems
PARAMETERS = {"with_docs": False}

TDL = """<template>
  <name>bench</name>
  <os><name>Debian</name><version>12</version><arch>x86_64</arch>
    <install type='url'><url>{mirror}</url></install></os>
  {customisation}
  <disk><size>3G</size></disk>
</template>"""

CUSTOMISATION = """<files><file name='/etc/bench-file'>{variant}</file></files>
  <commands><command name='bench'>echo {variant} &gt; /etc/bench-command</command></commands>"""

MKOSI_CONF = """[Distribution]
Distribution=debian
Release=bookworm
Mirror={mirror}

[Output]
Format=gpt_ext4
Bootable=no
OutputDirectory=out
Output=image.raw
Hostname=bench

[Content]
Packages={packages}
Cache=cache
"""


def template_text(mirror: str, variant: str | None) -> str:
    """The bench's TDL: with one file and one command of `variant`, or nothing on top."""
    custom = CUSTOMISATION.format(variant=variant) if variant is not None else ""
    return TDL.format(mirror=mirror, customisation=custom)


def recipe(mirror: str) -> JeosRecipe:
    """The plugin's JEOS recipe for the bench's template: its package set and apt sources."""
    template = parse_template(template_text(mirror, None))
    settings = Settings.read(template, plugin_parameters(imagefactory_debian, PARAMETERS))
    return JeosRecipe.of(releases.release("12"), releases.architecture("x86_64"), mirror,
                         settings)


@dataclass
class Build:
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    image: Path | None = None


class Imagefactory:
    """Calls the plugin's hook directly, as the build engine does, with caches under `work`."""

    def __init__(self, work: Path, mirror: str) -> None:
        self.work = work
        self.cache = work / "cache"
        self.mirror = mirror
        self.runs = 0

    def clear(self, *names: str) -> None:
        for name in names:
            shutil.rmtree(self.cache / name, ignore_errors=True)

    def build(self, variant: str | None, keep: bool = False) -> Build:
        """Build the template (customised with `variant`); `keep` the image (`Build.image`)."""
        self.runs += 1
        root = self.work / f"run{self.runs}"
        # the operator's allow-list: the mirror may resolve to a non-public address here
        ctx = make_build_context(root, image_id="bench",
                                 egress_allow=[urlsplit(self.mirror).hostname or ""])
        ctx.cache_root = self.cache
        template = parse_template(template_text(self.mirror, variant))
        began = time.monotonic()
        result = imagefactory_create_base_image(
            ctx=ctx, template=template,
            parameters=plugin_parameters(imagefactory_debian, PARAMETERS))
        seconds = time.monotonic() - began
        assert result.icicle and ctx.body_path.stat().st_size == DISK_SIZE
        if keep:
            return Build(seconds, phases.parse(ctx.lines), ctx.body_path)
        shutil.rmtree(root)
        return Build(seconds, phases.parse(ctx.lines))


class Mkosi:
    """mkosi 14 in a project directory under `work`: mkosi.conf, mkosi.extra/, mkosi.postinst."""

    def __init__(self, work: Path, mirror: str, packages: tuple[str, ...]) -> None:
        self.project = work
        self.project.mkdir(parents=True, exist_ok=True)
        (self.project / "mkosi.conf").write_text(
            MKOSI_CONF.format(mirror=mirror, packages=",".join(packages)))
        (self.project / "out").mkdir(exist_ok=True)
        (self.project / "cache").mkdir(exist_ok=True)

    def clear_package_cache(self) -> None:
        shutil.rmtree(self.project / "cache")
        (self.project / "cache").mkdir()

    def build(self, variant: str | None, *, incremental: bool = False, force: int = 2) -> Build:
        """Build (customised with `variant`, or not at all); the image stays until the next."""
        extra = self.project / "mkosi.extra" / "etc"
        postinst = self.project / "mkosi.postinst"
        shutil.rmtree(self.project / "mkosi.extra", ignore_errors=True)
        postinst.unlink(missing_ok=True)
        if variant is not None:
            extra.mkdir(parents=True)
            (extra / "bench-file").write_text(variant)
            postinst.write_text(f"#!/bin/sh\necho {variant} > /etc/bench-command\n")
            postinst.chmod(0o755)
        argv = ["mkosi", "--nspawn-keep-unit", "-" + "f" * force,
                *(["--incremental"] if incremental else []), "build"]
        began = time.monotonic()
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
             'mount -t tmpfs tmpfs /run && exec "$@"', "sh", *argv],
            cwd=self.project, capture_output=True, text=True)
        seconds = time.monotonic() - began
        images = list((self.project / "out").glob("*/image.raw"))
        if done.returncode != 0 or not images:
            sys.exit(f"mkosi failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return Build(seconds, image=images[0])


class Limit:
    """The floor under a build of this package set with mmdebstrap: bare mmdebstrap into a
    directory, then ``mkfs.ext4 -d`` of that tree into a file of the root partition's size.

    mmdebstrap runs as root in its root mode (no user namespace, no sandbox: faster than any
    confined build can be), with the plugin's speed choices (merged /usr by hook, dpkg's
    ``force-unsafe-io``, no translations) and its no-docs rules, so that it installs exactly the
    files the plugin's JEOS has before the plugin's own steps. It makes no initramfs at all (the
    plugin's hook that defers it, never undone): left alone, the kernel's and initramfs-tools'
    scripts would make two with Debian's MODULES=most, 20 s or more here, which is no floor.
    Warm: the packages of the cold run copied in by a ``sync-in`` hook (mmdebstrap's documented
    way to reuse packages)."""

    def __init__(self, work: Path, recipe: JeosRecipe) -> None:
        self.work = work
        self.recipe = recipe
        self.debs = work / "debs"
        self.tree = work / "tree"
        self.disk = work / "root.img"

    def build(self, warm: bool) -> Build:
        shutil.rmtree(self.tree, ignore_errors=True)
        argv = ["mmdebstrap", "--mode=root", "--variant=minbase",
                f"--include={','.join(self.recipe.packages)}",
                f"--hook-dir={MERGED_USR_HOOKS}", "--dpkgopt=force-unsafe-io",
                '--aptopt=Acquire::Languages "none"',
                f'--setup-hook=sh {SCRIPTS / "no-docs.sh"} "$1"',
                f'--extract-hook=sh {SCRIPTS / "no-docs.sh"} "$1" prune',
                f'--essential-hook=sh {SCRIPTS / "defer-initramfs.sh"} "$1"',
                "--skip=essential/unlink",
                '--setup-hook=mkdir -p "$1/var/cache/apt/archives"']
        if warm:
            argv.append(f"--setup-hook=sync-in {self.debs} /var/cache/apt/archives")
        else:
            shutil.rmtree(self.debs, ignore_errors=True)
            self.debs.mkdir(parents=True)
            argv.append(f"--customize-hook=sync-out /var/cache/apt/archives {self.debs}")
        argv += [self.recipe.release.codename, str(self.tree), *self.recipe.sources()]
        began = time.monotonic()
        steps = _run_marked(argv, "mmdebstrap-lists", PHASES)
        bootstrap = time.monotonic() - began
        size = Layout.for_size(DISK_SIZE).root.size
        self.disk.unlink(missing_ok=True)
        with self.disk.open("wb") as disk:
            disk.truncate(size)
        began = time.monotonic()
        _run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "root", "-d", self.tree, self.disk,
              f"{size // 1024}k"], env={**os.environ, "MKE2FS_CONFIG": str(MKE2FS_CONF)})
        mkfs = time.monotonic() - began
        self.disk.unlink()
        return Build(bootstrap + mkfs, {**steps, "jeos-mmdebstrap": bootstrap, "root-fs": mkfs,
                                        "total": bootstrap + mkfs})


def _run_marked(argv: list[str], first: str, marks: list[tuple[str, str]]) -> dict[str, float]:
    """Run mmdebstrap `argv`; the seconds of its phases, told by its messages as the plugin
    tells them (`imagefactory_debian.phases.marked`)."""
    found = {}
    current, began = first, time.monotonic()
    remaining = list(marks)
    tail: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stderr is not None
        for text in proc.stderr:
            tail = [*tail[-60:], text]
            for index, (prefix, name) in enumerate(remaining):
                if text.startswith(prefix):
                    now = time.monotonic()
                    found[current] = now - began
                    current, began = name, now
                    del remaining[: index + 1]
                    break
    found[current] = time.monotonic() - began
    if proc.returncode != 0:
        sys.exit(f"mmdebstrap failed:\n{''.join(tail)}")
    return found


def _run(argv: list[str | Path], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{argv[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
