"""Which operating systems the plugin builds, and what each release's installer expects.

A TDL names the OS as Oz did: ``<name>Fedora</name><version>40</version>``, or
``<name>RHEL-9</name><version>4</version>`` (the minor release; ``GOLD`` or ``U4`` for RHEL 5).
The rebuilds are aliases of the RHEL release with the same major version: ``CentOS-7``,
``CentOS-Stream-9``, ``Rocky-8``, ``Alma-9`` install and validate like ``RHEL-7``, ``RHEL-9`` …

Everything that differs between releases is decided here, once: the pykickstart handler that
validates the kickstart, the boot options of the installer (``inst.ks=`` since Anaconda 19,
``ks=`` before), the partition table and file systems, the package manager used in ``%post``
and the password hash the release's glibc understands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagefactory_core.plugin import BuildError, OSTarget

ARCHES = ("x86_64", "aarch64")
RHEL_MAJORS = (5, 6, 7, 8, 9)
ALIASES = {"CentOS": (5, 6, 7, 8), "CentOS-Stream": (8, 9), "Rocky": (8, 9), "Alma": (8, 9)}
FEDORA_VERSIONS = r"[1-9][0-9]{0,2}"
RHEL_VERSIONS = r"(?:GOLD|U?[0-9]{1,2})(?:\.[0-9]{1,2})?"
OLDEST_FEDORA = 7  # Fedora Core 1-6 had a different installer; pykickstart knows F7 onwards


@dataclass(frozen=True)
class Release:
    """One release as the installer sees it."""

    family: str  # "Fedora" or "RHEL"
    major: int
    name: str  # as the TDL spelt it (RHEL-9, Rocky-9, Fedora)

    @property
    def label(self) -> str:
        return f"{self.name} {self.major}" if self.family == "Fedora" else self.name

    @property
    def handler(self) -> str:
        """The pykickstart version the kickstart is validated against."""
        if self.family == "RHEL":
            return f"RHEL{self.major}"
        from pykickstart.version import versionMap

        newest = max(int(key[1:]) for key in versionMap if re.fullmatch(r"F[0-9]+", key))
        return f"F{min(self.major, newest)}"

    def at_least(self, fedora: int, rhel: int) -> bool:
        """Whether this release is at least Fedora `fedora` or RHEL `rhel`."""
        return self.major >= (fedora if self.family == "Fedora" else rhel)

    @property
    def inst_prefix(self) -> bool:
        """Anaconda 19 (Fedora 19, RHEL 7) renamed its boot options to ``inst.*``."""
        return self.at_least(19, 7)

    @property
    def gpt(self) -> bool:
        """Anaconda labels BIOS disks GPT (and wants a biosboot partition) since Fedora 16 and
        RHEL 7."""
        return self.at_least(16, 7)

    @property
    def root_fs(self) -> str:
        if self.family == "RHEL":
            return {5: "ext3", 6: "ext4"}.get(self.major, "xfs")
        return "ext4"

    @property
    def has_install_command(self) -> bool:
        """``install`` was deprecated in Fedora 29 / RHEL 8 (an install is all it does)."""
        return not self.at_least(29, 8)

    @property
    def package_manager(self) -> str:
        return "dnf" if self.at_least(22, 8) else "yum"

    @property
    def crypt_method(self) -> str:
        """`openssl passwd` option: SHA-512 crypt, which RHEL 5's glibc does not know."""
        return "-1" if self.family == "RHEL" and self.major < 6 else "-6"

    @property
    def base_group(self) -> str:
        return "@base" if self.family == "RHEL" and self.major < 7 else "@core"


def os_targets() -> list[OSTarget]:
    """Fedora, RHEL-5…9 and the rebuilds' aliases, as ``/plugins`` lists them."""
    targets = [OSTarget("Fedora", FEDORA_VERSIONS, ARCHES,
                        description="Fedora 7 and later: kickstart install in a sandboxed "
                                    "libvirt guest")]
    targets += [OSTarget(f"RHEL-{major}", RHEL_VERSIONS, ARCHES,
                         description=f"Red Hat Enterprise Linux {major}: kickstart install in a "
                                     "sandboxed libvirt guest")
                for major in reversed(RHEL_MAJORS)]
    targets += [OSTarget(f"{alias}-{major}", RHEL_VERSIONS, ARCHES,
                         description=f"{alias} {major}, installed as RHEL-{major}")
                for alias, majors in ALIASES.items() for major in majors]
    return targets


_RHEL_NAME = re.compile(r"(RHEL|CentOS-Stream|CentOS|Rocky|Alma)-([0-9]+)", re.IGNORECASE)


def release(name: str, version: str) -> Release:
    """The `Release` of a TDL's ``<os><name>`` and ``<version>`` (already matched against
    `os_targets` by the core, so only the numbers need reading)."""
    if name.lower() == "fedora":
        major = int(version.split(".")[0])
        if major < OLDEST_FEDORA:
            raise BuildError(f"Fedora {version} is not supported: Fedora {OLDEST_FEDORA} and "
                             "later are (Fedora Core 1-6 had another installer)")
        return Release("Fedora", major, "Fedora")
    match = _RHEL_NAME.fullmatch(name)
    if not match or int(match.group(2)) not in RHEL_MAJORS:
        raise BuildError(f"{name} is not an OS this plugin builds")
    return Release("RHEL", int(match.group(2)), name)
