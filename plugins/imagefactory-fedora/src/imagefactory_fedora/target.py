"""Apply a cloud plugin's `TargetContent` to a copy of a disk this plugin built.

The disk's root file system (its last partition: the kickstart puts ``/`` last) is
loop-mounted in a private mount namespace, shifted into the build sandbox's ids, and changed in
a sandbox whose root is that tree, with the egress proxy: the same ``%post`` steps as an install
(packages with yum/dnf, files, commands) and the same ``rpm -qa`` report, printed on the
sandbox's output instead of a console. The target image is the base image plus exactly the
content; nothing is reinstalled. The partition table is read by ``sfdisk`` in a sandbox too:
the disk is what the template's guest left.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagefactory_core.plugin import (
    BuildContext,
    BuildError,
    BuildResult,
    CommandFailed,
    TargetContent,
    Template,
    build_icicle,
)

from . import console, kickstart, versions
from .mounts import PrivateMounts
from .settings import Settings

SANDBOX_PROXY = "http://127.0.0.1:3128"
"""The egress proxy as a sandbox's processes see it (its ``http_proxy``)."""


def root_partition(ctx: BuildContext, disk: Path) -> tuple[int, int]:
    """(offset, size) in bytes of the disk's last partition."""
    sandbox = ctx.sandbox(None, host_tools=True, inputs=[(disk, "/disk")])
    table = json.loads(sandbox.run(["sfdisk", "--json", "/disk"], capture=True).stdout)
    partitions = table["partitiontable"]["partitions"]
    if not partitions:
        raise BuildError("the base image's disk has no partitions")
    sector = table["partitiontable"].get("sectorsize", 512)
    last = max(partitions, key=lambda p: p["start"])
    return last["start"] * sector, last["size"] * sector


def apply_target_content(ctx: BuildContext, template: Template, content: TargetContent,
                         disk: Path, parameters: Mapping[str, Any]) -> BuildResult | None:
    settings = Settings.read(template, parameters)
    release = versions.release(template.os.name, template.os.version)
    markers = kickstart.Markers(secrets.token_hex(6))
    spec = kickstart.KickstartInput(
        release=release, arch=template.os.arch, source_url=None, root_hash=None,
        disk_bytes=settings.disk_bytes, markers=markers, packages=list(content.packages),
        files=sorted(content.files.items()),
        commands=[(f"target command {n}", body) for n, body in enumerate(content.commands, 1)],
        icicle_extra_command=template.os.icicle_extra_command, proxy=SANDBOX_PROXY)
    script = kickstart.post_script(spec, None)
    ctx.progress(0, "customise: mounting the root file system")
    offset, size = root_partition(ctx, disk)
    mountpoint = ctx.workdir / "fedora-target-root"
    mountpoint.mkdir(parents=True, exist_ok=True)
    with PrivateMounts() as mounts:
        mounts.mount_partition(ctx, disk, offset, size, mountpoint)
        ctx.adopt_tree(mountpoint, mounts.enter)
        ctx.progress(10, "customise: target packages, files and commands")
        sandbox = ctx.sandbox(mountpoint, network="egress", enter=mounts.enter,
                              egress_via=settings.install_proxy)
        try:
            result = sandbox.run(["/bin/sh", "-c", script], capture=True,
                                 timeout=settings.install_timeout)
        except CommandFailed as error:
            raise BuildError(f"the target content failed (exit code {error.returncode}):\n"
                             f"{error.output_tail}") from error
        for line in result.stdout.splitlines():
            ctx.log(f"| {line}")
        ctx.release_tree(mountpoint, mounts.enter)
        mounts.unmount(ctx, mountpoint)
    console.check_post(result.stdout, markers)
    packages = console.packages(result.stdout, markers,
                                bool(template.os.icicle_extra_command))
    ctx.progress(100, "complete")
    if not content.packages:
        return None
    return BuildResult(icicle=build_icicle(packages, template.description))
