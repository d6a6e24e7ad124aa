"""The kickstart of an install: generated from the TDL for the release, and validated.

What the generated kickstart does, in order:

* the install source (``url --url=… --proxy=…`` through the guest's only way out, the egress
  proxy; ``cdrom`` for ISO installs), a text-mode install, ``en_US.UTF-8``, UTC, DHCP;
* the root password as a crypt hash (``rootpw --iscrypted``): the clear text never enters the
  guest, and the root account is locked when the TDL has none;
* the whole disk, labelled as the release's installer labels it (GPT with a ``biosboot``
  partition from Fedora 16 / RHEL 7 on), ``/boot`` and a growing ``/`` (no LVM: the target
  content step mounts the root file system directly);
* ``%packages``: the release's base group only;
* one ``%post`` that, as TDL documents, writes the repositories, runs the precommands, installs
  the template's packages with yum/dnf (through the proxy), writes the files, runs the commands,
  removes the repositories that are not ``persisted``, then prints the ``rpm -qa`` list (and
  ``<icicle><extra_command>``'s output) between markers on the serial console. A failing step
  prints a failure marker with its exit code and ends the script; the plugin fails the build;
* ``poweroff``: the plugin's sign that the install is over.

Template text reaches the shell only base64-encoded or quoted, so no value can end a heredoc
or a quoted word. `validate` runs pykickstart's parser for the release's syntax version over
every kickstart, generated or given (``install_script``), before any VM starts.
"""

from __future__ import annotations

import base64
import re
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from imagefactory_core.plugin import BuildError, Repository

from .versions import Release

GUEST_PROXY = "http://10.0.2.2:3128"
"""The egress proxy as the guest sees it: QEMU's user network maps 10.0.2.2 to the loopback of
the sandbox's network namespace, where the sandbox's proxy listens on port 3128."""

_PACKAGE = re.compile(r"@?\^?[A-Za-z0-9][A-Za-z0-9_.+:*/-]{0,200}")
_SLUG = re.compile(r"[^A-Za-z0-9_.-]")
BOOT_MIB = 1024
BIOSBOOT_MIB = 1


@dataclass(frozen=True)
class Markers:
    """Console markers of one build (a random `nonce` keeps them apart from anything else a
    guest prints)."""

    nonce: str

    def line(self, what: str) -> str:
        return f"IMAGEFACTORY-{self.nonce}-{what}"

    @property
    def icicle_begin(self) -> str:
        return self.line("ICICLE-BEGIN")

    @property
    def icicle_end(self) -> str:
        return self.line("ICICLE-END")

    @property
    def extra_begin(self) -> str:
        return self.line("EXTRA-BEGIN")

    @property
    def extra_end(self) -> str:
        return self.line("EXTRA-END")

    @property
    def failed(self) -> str:
        return self.line("FAILED")

    @property
    def done(self) -> str:
        return self.line("POST-DONE")


@dataclass(frozen=True)
class Step:
    """A shell step of ``%post``: `name` for messages, `script` the shell text."""

    name: str
    script: str


@dataclass(frozen=True)
class KickstartInput:
    """Everything a generated kickstart is made of, resolved: URL files and commands are
    fetched, base64 decoded, the password hashed."""

    release: Release
    arch: str
    source_url: str | None  # None: install from the CD-ROM
    root_hash: str | None  # None: the root account is locked
    disk_bytes: int
    markers: Markers
    repositories: Sequence[Repository] = ()
    precommands: Sequence[tuple[str, str]] = ()  # (name, body)
    packages: Sequence[str] = ()
    files: Sequence[tuple[str, bytes]] = ()  # (absolute path, content)
    commands: Sequence[tuple[str, str]] = ()
    icicle_extra_command: str | None = None
    proxy: str = GUEST_PROXY  # where yum/dnf reach the network


def console_device(arch: str) -> str:
    return "ttyAMA0" if arch == "aarch64" else "ttyS0"


def generate(spec: KickstartInput) -> str:
    release = spec.release
    console = console_device(spec.arch)
    lines = [f"# imagefactory-fedora: {release.label} {spec.arch}"]
    if release.has_install_command:
        lines.append("install")
    lines.append("text")
    if spec.source_url:
        if not release.at_least(7, 6):
            raise BuildError(f"{release.label}'s installer cannot download through a proxy, "
                             "the guest's only way out: install it from an ISO (<install "
                             "type='iso'>)")
        lines.append(f'url --url="{spec.source_url}" --proxy="{GUEST_PROXY}"')
    else:
        lines.append("cdrom")
    if release.family == "RHEL" and release.major in (5, 6):
        lines.append("key --skip")
    lines += ["lang en_US.UTF-8", "keyboard us", "timezone --utc UTC", "skipx",
              "network --bootproto=dhcp"]
    if spec.root_hash:
        lines.append(f"rootpw --iscrypted {spec.root_hash}")
    else:
        lines.append("rootpw --lock --iscrypted !" if release.at_least(16, 7)
                     else "rootpw --iscrypted !!")
    lines += ["selinux --enforcing", "firstboot --disabled",
              f'bootloader --location=mbr --append="console=tty0 console={console},115200"',
              "zerombr", "clearpart --all --initlabel"]
    lines += partitions(release, spec.arch, spec.disk_bytes)
    lines.append("poweroff")
    end = "%end" if release.at_least(7, 6) else ""
    lines += ["", "%packages", release.base_group, end, ""]
    lines += ["%post", post_script(spec, console), end, ""]
    return "\n".join(line for line in lines if line is not None) + "\n"


def partitions(release: Release, arch: str, disk_bytes: int) -> list[str]:
    """Partition lines: [biosboot or EFI,] /boot, / growing over the rest of the disk."""
    disk_mib = disk_bytes // 1024**2
    boot_fs = "ext3" if release.family == "RHEL" and release.major == 5 else "ext4"
    if release.family == "RHEL" and release.major >= 7:
        boot_fs = "xfs"
    lines = []
    if arch == "aarch64":
        lines.append("part /boot/efi --fstype=efi --size=200")
    elif release.gpt:
        lines.append(f"part biosboot --fstype=biosboot --size={BIOSBOOT_MIB}")
    root_mib = disk_mib - BOOT_MIB - 256
    if root_mib < 512:
        raise BuildError(f"a {disk_mib} MiB disk is too small: {release.label} needs at "
                         f"least {BOOT_MIB + 256 + 512} MiB (<disk><size>)")
    lines.append(f"part /boot --fstype={boot_fs} --size={BOOT_MIB}")
    lines.append(f"part / --fstype={release.root_fs} --size=512 --grow")
    return lines


def _write(path: str, data: bytes) -> str:
    """Shell text writing `data` to `path` (created with its directories); in a subshell, a
    failure exits it with the failing status."""
    encoded = base64.encodebytes(data).decode("ascii")
    directory = path.rsplit("/", 1)[0] or "/"
    return (f"mkdir -p {shlex.quote(directory)} && base64 -d > {shlex.quote(path)} "
            f"<<'IMAGEFACTORY_DATA' || exit $?\n{encoded}IMAGEFACTORY_DATA")


def _run(body: str, number: int) -> str:
    """Shell text running `body` as a script of its own (any interpreter line it has)."""
    path = f"/root/.imagefactory-step-{number}"
    return (f"{_write(path, body.encode())}\nchmod 700 {path} && {path}; status=$?; "
            f"rm -f {path}; exit $status")


def _repo_file(repository: Repository) -> tuple[str, bytes]:
    slug = _SLUG.sub("-", repository.name)
    url = repository.url.strip()
    text = (f"[{slug}]\nname={slug}\nbaseurl={url}\nenabled=1\n"
            f"gpgcheck={int(repository.signed)}\nsslverify={int(repository.sslverify)}\n")
    return f"/etc/yum.repos.d/imagefactory-{slug}.repo", text.encode()


def post_steps(spec: KickstartInput) -> list[Step]:
    """The ``%post`` steps in TDL's order (repositories, precommands, packages, files,
    commands, transient repositories removed)."""
    steps: list[Step] = []
    number = 0
    for repository in spec.repositories:
        path, data = _repo_file(repository)
        steps.append(Step(f"repository {repository.name}", _write(path, data)))
    for name, body in spec.precommands:
        number += 1
        steps.append(Step(f"precommand {name}", _run(body, number)))
    if spec.packages:
        for package in spec.packages:
            if not _PACKAGE.fullmatch(package):
                raise BuildError(f"{package[:100]!r} is not an RPM package or group name")
        manager = spec.release.package_manager
        words = " ".join(shlex.quote(p) for p in spec.packages)
        steps.append(Step("packages", f"{manager} -y --setopt=proxy={spec.proxy} "
                                      f"install {words}"))
    for path, data in spec.files:
        if not path.startswith("/") or ".." in path.split("/"):
            raise BuildError(f"file name {path[:200]!r} must be an absolute path without '..'")
        steps.append(Step(f"file {path}", _write(path, data)))
    for name, body in spec.commands:
        number += 1
        steps.append(Step(f"command {name}", _run(body, number)))
    transient = [_repo_file(r)[0] for r in spec.repositories if not r.persisted]
    if transient:
        steps.append(Step("removing repositories that are not persisted",
                          "rm -f " + " ".join(shlex.quote(p) for p in transient)))
    return steps


def post_script(spec: KickstartInput, console: str | None) -> str:
    """The body of ``%post``: its output on the `console` device (or standard output), each
    step checked, the ICICLE."""
    markers = spec.markers
    out = [f"exec > /dev/{console} 2>&1" if console else "exec 2>&1",
           "imagefactory_fail() { echo; echo \"" + markers.failed + " $1: exit code $2\"; "
           "exit 0; }"]
    for step in post_steps(spec):
        label = shlex.quote(step.name)
        out.append(f"echo {shlex.quote('== ' + step.name)}")
        out.append(f"( {step.script}\n) || imagefactory_fail {label} $?")
    out.append("rpm -qa --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n' > /root/.imagefactory-"
               "packages || imagefactory_fail 'icicle' $?")
    if spec.icicle_extra_command:
        extra = _write("/root/.imagefactory-extra", spec.icicle_extra_command.encode())
        out.append(f"( {extra}\nsh /root/.imagefactory-extra > /root/.imagefactory-extra.out"
                   "\n) || imagefactory_fail 'icicle extra_command' $?")
        out.append(f"echo {markers.extra_begin}; cat /root/.imagefactory-extra.out; "
                   f"echo {markers.extra_end}")
    out.append(f"echo {markers.icicle_begin}; cat /root/.imagefactory-packages; "
               f"echo {markers.icicle_end}")
    out.append("rm -f /root/.imagefactory-packages /root/.imagefactory-extra "
               "/root/.imagefactory-extra.out")
    out.append(f"echo {markers.done}")
    return "\n".join(out)


def validate(text: str, release: Release) -> None:
    """Raise `BuildError` with pykickstart's message unless `text` is a valid kickstart for
    `release` (its syntax version: F17, RHEL8 …). Deprecated commands are errors too: the
    release's installer may ignore them."""
    from pykickstart.errors import KickstartError
    from pykickstart.parser import KickstartParser
    from pykickstart.version import makeVersion

    parser = KickstartParser(makeVersion(release.handler), followIncludes=False,
                             missingIncludeIsFatal=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            parser.readKickstartFromString(text)
        except (KickstartError, Warning) as error:
            raise BuildError(f"the kickstart is not valid for {release.label} "
                             f"(pykickstart {release.handler}): {error}") from None
