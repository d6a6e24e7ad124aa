"""The plugin's parameters, and the settings of one build made from them.

The core checks each parameter against its declaration and resolves it (the request's value,
else the ``plugins.fedora`` section of imagefactory.conf, else the default) before the build
starts. What decides where the service connects or what a build may spend (the proxy, the
libvirt connection, memory, time limits) is operator-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagefactory_core.plugin import BuildError, Parameter, ParameterError, Template

DEFAULT_DISK_BYTES = 10 * 1024**3  # Oz's default when the TDL has no <disk><size>
CONNECTIONS = ("auto", "embed", "system")
ACCELERATIONS = ("auto", "kvm", "tcg")

PARAMETERS = [
    Parameter("install_script", "string", None, "a kickstart that replaces the generated one "
              "(validated with pykickstart for the release like a generated one)"),
    Parameter("kernel_cmdline", "string", "", "appended to the installer's kernel command "
              "line (after the TDL's <kernelparam>)", pattern=r"[A-Za-z0-9_.,:=/+@ -]{0,512}"),
    Parameter("install_proxy", "url", None, "HTTP proxy the guest's downloads go through "
              "after the egress policy allowed them (e.g. a package cache); without "
              "user:password@ (a parameter is stored and shown: let the build host in by its "
              "address)", pattern=r"http://[^\s/@]+(/\S*)?", operator_only=True),
    Parameter("libvirt_connection", "string", "auto", "embed: libvirt's embedded QEMU driver "
              "(qemu:///embed) inside the build sandbox, no daemon, TCG only; system: libvirtd "
              "(qemu:///system), KVM when usable, the guest's network and disks served from a "
              "build sandbox; auto: system where libvirtd answers and KVM is usable, else embed",
              choices=CONNECTIONS, operator_only=True),
    Parameter("accel", "string", "auto", "kvm, tcg (emulation), or auto: kvm where /dev/kvm "
              "can run stock kernels and the connection can use it (the embedded driver "
              "cannot)", choices=ACCELERATIONS, operator_only=True),
    Parameter("memory_mib", "integer", 2048, "the installer guest's memory", minimum=256,
              maximum=65536, operator_only=True),
    Parameter("cpus", "integer", 2, "the installer guest's virtual CPUs", minimum=1,
              maximum=64, operator_only=True),
    Parameter("install_timeout", "integer", 7200, "seconds an install may take in all",
              minimum=10, maximum=86400, operator_only=True),
    Parameter("inactivity_timeout", "integer", 600, "seconds without disk or network I/O "
              "after which an install is taken as hung", minimum=5, maximum=86400,
              operator_only=True),
]

_URL = Parameter("url", "url")


def checked_url(value: str, what: str) -> str:
    """`value` if it is an http(s) URL without white space, quotes or control characters: it
    goes into the kickstart, the kernel command line and curl's arguments."""
    try:
        return str(_URL.coerce(value.strip(), what))
    except ParameterError:
        raise BuildError(f"the template's {what} {value.strip()[:200]!r} is not an http:// or "
                         "https:// URL without white space, quotes or control characters") \
            from None


@dataclass(frozen=True)
class Settings:
    install_script: str | None
    kernel_cmdline: str
    install_proxy: str | None
    connection: str  # "auto", "embed" or "system" (resolved by `connection.choose`)
    accel: str  # "auto", "kvm" or "tcg"
    memory_mib: int
    cpus: int
    install_timeout: int
    inactivity_timeout: int
    disk_bytes: int

    @classmethod
    def read(cls, template: Template, parameters: Mapping[str, Any]) -> Settings:
        kernel_cmdline = " ".join(filter(None, (template.os.kernelparam or "",
                                                parameters["kernel_cmdline"])))
        if any(c in kernel_cmdline for c in "\"'\n\\"):
            raise BuildError("<kernelparam> may not hold quotes, backslashes or line breaks")
        return cls(
            install_script=parameters["install_script"] or None,
            kernel_cmdline=kernel_cmdline.strip(),
            install_proxy=parameters["install_proxy"],
            connection=parameters["libvirt_connection"],
            accel=parameters["accel"],
            memory_mib=parameters["memory_mib"],
            cpus=parameters["cpus"],
            install_timeout=parameters["install_timeout"],
            inactivity_timeout=parameters["inactivity_timeout"],
            disk_bytes=template.disk_size or DEFAULT_DISK_BYTES,
        )
