"""Build a base image: a kickstart install of the release onto the image's raw disk.

Phases and their share of ``percent_complete``:

====== ===========================================================================
0-5    settings, the template's url files and commands, the kickstart (validated)
5-10   the installer's kernel and initrd (cached), the kickstart appended to the initrd
10-95  the installer guest, until it powers off (progress follows the disk writes)
95-100 the ``%post`` report and the ICICLE from the console
====== ===========================================================================

A failed or cancelled build removes the partial disk; its scratch directory goes with the
build's work directory.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import BuildContext, BuildError, BuildResult, Template

from . import accel, connection, console, kickstart, treefetch, versions
from .domain import Guest, random_mac, random_name
from .guest import Media, run_guest, watched
from .icicle import icicle
from .initrd import append_files
from .settings import Settings

KICKSTART_PATH = "/ks.cfg"


@dataclass(frozen=True)
class Install:
    """How the installer boots: files on the host and its kernel command line."""

    media: Media
    cmdline: str


def create_base_image(ctx: BuildContext, template: Template,
                      parameters: Mapping[str, Any]) -> BuildResult:
    if template.os.rootpw:
        ctx.add_secret(template.os.rootpw)
    settings = Settings.read(template, parameters)
    release = versions.release(template.os.name, template.os.version)
    if template.os.install_extras:
        raise BuildError("<extras> name files on the build host: they are not copied into "
                         "the install (put files in the image with <files>)")
    scratch = ctx.workdir / "fedora"
    scratch.mkdir(parents=True, exist_ok=True)
    markers = kickstart.Markers(secrets.token_hex(6))
    try:
        ctx.progress(1, f"kickstart for {release.label} {template.os.arch}")
        text = _kickstart(ctx, template, settings, release, markers)
        ctx.progress(5, "installer kernel and initrd")
        install = _installer(ctx, template, settings, release, text, scratch)
        with open(ctx.body_path, "wb") as disk:
            disk.truncate(settings.disk_bytes)
        where = connection.choose(settings.connection, settings.accel)
        chosen = accel.choose(settings.accel, where)
        guest = Guest(name=random_name(ctx.image_id), arch=template.os.arch, accel=chosen,
                      memory_mib=settings.memory_mib, cpus=settings.cpus, kernel="",
                      initrd="", cmdline=install.cmdline, disk="", console="",
                      mac=random_mac())
        ctx.progress(10, f"installing {release.label} in a {chosen.upper()} guest "
                         f"({'libvirtd' if where == 'system' else 'embedded driver'})")
        outcome = run_guest(watched(ctx, 10, 95), guest, install.media, scratch,
                            connection=where, inactivity=settings.inactivity_timeout,
                            timeout=settings.install_timeout)
        os.chown(ctx.body_path, 0, 0)
        ctx.progress(95, f"the guest powered off after {outcome.seconds:.0f} s: ICICLE")
        console.check_post(outcome.console, markers)
        manifest = icicle(outcome.console, markers, template)
    except BaseException:
        ctx.body_path.unlink(missing_ok=True)
        raise
    ctx.progress(100, "complete")
    return BuildResult(icicle=manifest, properties={
        "disk_format": "raw",
        "os_release": release.label,
        "install": template.os.install_type,
        "kickstart": "install_script" if settings.install_script else "generated",
        "kickstart_syntax": release.handler,
        "accel": chosen,
        "libvirt_connection": where,
    })


def _kickstart(ctx: BuildContext, template: Template, settings: Settings,
               release: versions.Release, markers: kickstart.Markers) -> str:
    root_hash = _root_hash(ctx, template.os.rootpw, release) if template.os.rootpw else None
    source = None
    if template.os.install_type == "url":
        source = treefetch.checked_url(template.os.install_url or "", "<install><url>")
    spec = kickstart.KickstartInput(
        release=release, arch=template.os.arch, source_url=source, root_hash=root_hash,
        disk_bytes=settings.disk_bytes, markers=markers, repositories=template.repositories,
        precommands=[(c.name, _body(ctx, c.body, c.type, c.name, settings))
                     for c in template.precommands],
        packages=[p.name for p in template.packages],
        files=[(f.name, treefetch.fetch_text(ctx, f.content.strip(), f"file {f.name}",
                                             settings.install_proxy)
                if f.type == "url" else f.data()) for f in template.files],
        commands=[(c.name, _body(ctx, c.body, c.type, c.name, settings))
                  for c in template.commands],
        icicle_extra_command=template.os.icicle_extra_command)
    if settings.install_script:
        ctx.log("the kickstart is the install_script parameter; the template's customisation "
                "and the ICICLE report follow it in a %post of their own")
        end = "%end\n" if release.at_least(7, 6) else ""
        text = (settings.install_script.rstrip("\n") + "\n\n%post\n"
                + kickstart.post_script(spec, kickstart.console_device(template.os.arch))
                + "\n" + end)
    else:
        text = kickstart.generate(spec)
    kickstart.validate(text, release)
    ctx.log(f"the kickstart is valid {release.handler} syntax ({len(text)} bytes)")
    return text


def _body(ctx: BuildContext, body: str, kind: str, name: str, settings: Settings) -> str:
    if kind == "url":
        return treefetch.fetch_text(ctx, body.strip(), f"command {name}",
                                    settings.install_proxy).decode("utf-8", "replace")
    return body


def _root_hash(ctx: BuildContext, password: str, release: versions.Release) -> str:
    """The crypt hash of `password` (given to openssl on standard input, never argv)."""
    result = ctx.run(["openssl", "passwd", release.crypt_method, "-stdin"],
                     input=password.encode() + b"\n", capture=True)
    digest = result.stdout.strip()
    ctx.add_secret(digest)
    return digest


def _installer(ctx: BuildContext, template: Template, settings: Settings,
               release: versions.Release, text: str, scratch: Path) -> Install:
    os_ = template.os
    if os_.install_type == "iso":
        image = treefetch.iso(ctx, os_.install_url or "", os_.checksum_type, os_.checksum_url,
                              settings.install_proxy)
        boot = treefetch.iso_boot_files(ctx, image)
        repo, iso = "cdrom", image
    else:
        boot = treefetch.tree_boot_files(ctx, os_.install_url or "", settings.install_proxy)
        repo, iso = treefetch.checked_url(os_.install_url or "", "<install><url>"), None
    initrd = scratch / "initrd.img"
    append_files(boot.initrd, initrd, [(KICKSTART_PATH, text.encode(), 0o644)])
    initrd.chmod(0o644)
    prefix = "inst." if release.inst_prefix else ""
    words = [f"{prefix}ks=file:{KICKSTART_PATH}", f"{prefix}repo={repo}"]
    if repo != "cdrom":
        words.append(f"{prefix}proxy={kickstart.GUEST_PROXY}")
    words += [f"console={kickstart.console_device(os_.arch)},115200", f"{prefix}text"]
    if settings.kernel_cmdline:
        words.append(settings.kernel_cmdline)
    return Install(Media(kernel=boot.kernel, initrd=initrd, disk=ctx.body_path, iso=iso),
                   " ".join(words))
