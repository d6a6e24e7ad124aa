"""Helpers of the debian plugin's tests: real builds through the plugin's hook, and ways to look
inside images and at the host without leaving mounts behind. (Imported by the tests; the test
directory is put on sys.path by conftest.py.)"""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import imagefactory_debian
from imagefactory_core.plugin import BuildResult, Template, parse_template
from imagefactory_core.testing import RecordingBuildContext, make_build_context, plugin_parameters
from imagefactory_debian import imagefactory_create_base_image
from imagefactory_debian.debcache import deb_file_name
from imagefactory_debian.disk import ROOT_START

BOOT_MARKER = "IMAGEFACTORY-DEBIAN-BOOT-MARKER"
ROOT_PASSWORD = "Test-root-pw-4711"
BASE64_CONTENT = b"base64 content\n"
URL_CONTENT = b"content fetched from a URL\n"

# A systemd unit, enabled by a TDL command, that prints the marker on the serial console.
MARKER_COMMAND = f"""\
cat > /etc/systemd/system/imagefactory-boot-marker.service <<'UNIT'
[Unit]
Description=Print the imagefactory test marker on the serial console

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo {BOOT_MARKER} > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable imagefactory-boot-marker.service
"""


# The phases a build that makes its JEOS tree logs before the others (imagefactory_debian.phases).
JEOS_PHASES = ["mmdebstrap-lists", "mmdebstrap-download", "mmdebstrap-extract",
               "mmdebstrap-essential", "mmdebstrap-rest", "jeos-mmdebstrap", "jeos-finish"]

# The package mirror the tests use. In this workplace it resolves to a non-public address, which
# the build sandbox's egress policy refuses unless the operator allows it: the tests are that
# operator.
MIRROR_HOSTS = ("deb.debian.org",)

# Template commands run as root in the build sandbox, but cannot reach past the tree: no device
# nodes, no mounts, no way back to the host's file systems, read-only kernel settings.
CONFINEMENT_COMMAND = """\
set -e
denied() {
    if "$@" 2>/dev/null; then echo "not denied: $*"; exit 1; fi
}
denied mknod /tmp/disk b 8 0
denied mount -t tmpfs tmpfs /mnt
denied sh -c 'echo x > /proc/sys/kernel/core_pattern'
denied sh -c 'echo h > /proc/sysrq-trigger'
test ! -e /run/imagefactory-host
echo confined > /etc/imagefactory-test/confined.txt
"""


# apt's line for a package it fetches: "Get:7 URI SUITE/COMPONENT ARCH PACKAGE ARCH VERSION [KB]"
_PACKAGE_DOWNLOAD = re.compile(r"Get:\d+ \S+ \S+/\S+ \S+ (\S+) (\S+) (\S+) \[")


def downloaded_packages(lines: list[str]) -> set[str]:
    """The cache file names of the packages apt downloaded, from a build's log."""
    matches = (_PACKAGE_DOWNLOAD.match(line) for line in lines)
    return {deb_file_name(package, version, arch)
            for package, arch, version in (match.groups() for match in matches if match)}


def tdl(name: str, *, body: str = "", rootpw: str | None = None, extra_os: str = "") -> str:
    """A bookworm TDL with `body` (packages, files, commands …) inside <template>."""
    password = f"<rootpw>{rootpw}</rootpw>" if rootpw else ""
    return f"""<template>
  <name>{name}</name>
  <os><name>Debian</name><version>12</version><arch>x86_64</arch>
    <install type='url'><url>http://deb.debian.org/debian</url></install>
    {password}{extra_os}
  </os>
  <description>imagefactory-debian test image {name}</description>
  {body}
</template>"""


@dataclass
class Build:
    template: Template
    ctx: RecordingBuildContext
    result: BuildResult
    seconds: float

    @property
    def disk(self) -> Path:
        return self.ctx.body_path


def build(root: Path, cache: Path, text: str, image_id: str = "image",
          on_log: Callable[[RecordingBuildContext, str], None] | None = None,
          egress_allow: tuple[str, ...] = ()) -> Build:
    """Build `text` with the plugin's hook, as the core would, with caches under `cache`;
    the sandbox may reach the mirror and `egress_allow` (the operator's allow-list)."""
    template = parse_template(text)
    ctx = make_build_context(root, image_id=image_id,
                             egress_allow=(*MIRROR_HOSTS, *egress_allow))
    ctx.cache_root = cache
    if on_log:
        lines = ctx.lines

        def sink(line: str) -> None:
            lines.append(line)
            on_log(ctx, line)
        ctx.log_sink = sink
    started = time.monotonic()
    result = imagefactory_create_base_image(ctx=ctx, template=template,
                                            parameters=plugin_parameters(imagefactory_debian))
    return Build(template, ctx, result, time.monotonic() - started)


def session_tdl(file_server: str) -> str:
    encoded = base64.b64encode(BASE64_CONTENT).decode()
    return tdl("Imagefactory Debian_Test", rootpw=ROOT_PASSWORD,
               extra_os="<icicle><extra_command>dpkg-query -W -f '${Installed-Size}\\n'"
                        "</extra_command></icicle>",
               body=f"""
  <repositories>
    <repository name='backports (transient)'>
      <url>http://deb.debian.org/debian bookworm-backports main</url>
      <signed>yes</signed><persisted>no</persisted>
    </repository>
  </repositories>
  <precommands>
    <command name='pre'>mkdir -p /etc/imagefactory-test
echo precommand &gt; /etc/imagefactory-test/pre.txt</command>
  </precommands>
  <packages><package name='less'/><package name='tree'/></packages>
  <files>
    <file name='/etc/imagefactory-test/raw.txt'>raw content</file>
    <file name='/etc/imagefactory-test/base64.txt' type='base64'>{encoded}</file>
    <file name='/etc/imagefactory-test/url.txt' type='url'>{file_server}/url.txt</file>
  </files>
  <commands>
    <command name='order' position='2'>set -e
test -s /etc/imagefactory-test/raw.txt
command -v tree &gt; /etc/imagefactory-test/order.txt
hostname &gt; /etc/imagefactory-test/hostname.txt</command>
    <command name='boot marker' position='1'>{escape(MARKER_COMMAND)}</command>
    <command name='confinement' position='3'>{escape(CONFINEMENT_COMMAND)}</command>
  </commands>
  <disk><size>3G</size></disk>""")


@contextmanager
def mounted_root(disk: Path, offset: int = ROOT_START) -> Iterator[Path]:
    """The root file system of `disk`, mounted read-only in a private mount namespace and
    readable through ``/proc/<pid>/root``: nothing is ever mounted on the host."""
    holder = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
         f'mount -o ro,loop,offset={offset} "$1" /mnt && echo ready && read _', "sh", disk],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdin and holder.stdout
    try:
        assert holder.stdout.readline() == b"ready\n", "cannot mount the image's root"
        yield Path(f"/proc/{holder.pid}/root/mnt")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines()
            if str(path) in line]


def loop_devices_of(path: Path) -> list[str]:
    listing = subprocess.run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"],
                             capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if str(path) in line]


def processes_in(path: Path) -> list[int]:
    """Processes whose root or working directory is inside `path`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        for link in ("root", "cwd"):
            try:
                if str(path) in str((proc / link).readlink()):
                    found.append(int(proc.name))
            except OSError:
                pass
    return found
