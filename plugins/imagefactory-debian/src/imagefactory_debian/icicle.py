"""The ICICLE of a tree: its installed packages as name-version-arch, from dpkg's database.

``<icicle><extra_command>`` runs once in the tree; its output lines are paired with the package
list in order, as Oz does, so it must print one line per installed package in dpkg-query's order
(for instance ``dpkg-query -W -f '${Installed-Size}\\n'``).
"""

from __future__ import annotations

from dataclasses import dataclass

from imagefactory_core.plugin import BuildContext, BuildError, CommandFailed, Template, build_icicle

from .debcache import deb_file_name
from .rootfs import RootFS

_FORMAT = r"${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"


@dataclass(frozen=True)
class InstalledPackage:
    name: str
    version: str
    arch: str

    @property
    def icicle_name(self) -> str:
        return f"{self.name}-{self.version}-{self.arch}"

    @property
    def deb_file(self) -> str:
        return deb_file_name(self.name, self.version, self.arch)


def installed_packages(ctx: BuildContext, root: RootFS) -> list[InstalledPackage]:
    listing = root.run(ctx, ["dpkg-query", "--show", f"--showformat={_FORMAT}"], capture=True)
    packages = []
    for line in listing.stdout.splitlines():
        status, name, version, arch = line.split("\t")
        if status[1:2] == "i":  # unpacked and configured, not merely known (removed, config)
            packages.append(InstalledPackage(name, version, arch))
    return packages


def icicle(ctx: BuildContext, root: RootFS, template: Template,
           packages: list[InstalledPackage]) -> str:
    """The ICICLE XML of `packages`, with the template's extra command's lines."""
    names = [package.icicle_name for package in packages]
    extras: list[str | None] = [None] * len(names)
    command = template.os.icicle_extra_command
    if command:
        try:
            lines = root.run_text(ctx, command, capture=True).stdout.splitlines()
        except CommandFailed as error:
            raise BuildError(f"icicle extra_command failed (exit code {error.returncode}):\n"
                             f"{error.output_tail}") from error
        if len(lines) != len(names):
            raise BuildError(f"icicle extra_command printed {len(lines)} lines for {len(names)} "
                             "installed packages: it must print one line per package, in "
                             "dpkg-query's order")
        extras = list(lines)
    return build_icicle(list(zip(names, extras, strict=True)), template.description)
