"""The plugin's parameters, and the settings of one build made from them.

The core checks each parameter against its declaration and resolves it (the request's value,
else the ``plugins.debian`` section of imagefactory.conf, else the default) before the build
starts, so a typo fails the request, not the build halfway. `mirror` falls back to the TDL's
``<install type='url'><url>``: that URL is the template's own say. Parameters that decide where
the service connects (mirrors, proxy) or what it spends (caches, time limits) are
operator-only: a request may set them only when the operator allows that client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagefactory_core.plugin import BuildError, Parameter, ParameterError, Template

# Storage drivers for the virtual and cloud hardware the images are meant for. With this list
# the initramfs takes about 2 s to build and 8 MB; Debian's own "most" takes 17 s and 30 MB here.
# Drivers are added, not forced: udev loads the ones the machine needs at boot.
CLOUD_DRIVERS = (
    "ext4", "crc32c_generic",
    "virtio_pci", "virtio_blk", "virtio_scsi",
    "sd_mod", "sr_mod", "ahci", "ata_piix", "ata_generic", "nvme",
    "xen_blkfront", "hv_vmbus", "hv_storvsc", "vmw_pvscsi", "mptspi", "mptsas", "megaraid_sas",
)


def _security_mirror(mirror: str) -> str | None:
    """deb.debian.org/debian → deb.debian.org/debian-security; other mirrors have no known one."""
    return mirror + "-security" if mirror.endswith("/debian") else None


PARAMETERS = [
    Parameter("mirror", "url", None, "the Debian mirror; unset: the TDL's <install "
              "type='url'><url>", operator_only=True),
    Parameter("security_mirror", "url", None, "source of <codename>-security; unset: the "
              "mirror with -security appended when it ends in /debian", operator_only=True),
    Parameter("security_updates", "boolean", True, "install from <codename>-security"),
    Parameter("components", "list", ["main"], "archive components",
              pattern=r"[a-z][a-z0-9-]{0,63}"),
    Parameter("apt_proxy", "url", None, "HTTP proxy apt goes through during the build (e.g. "
              "an apt-cacher-ng); never written into the image; without user:password@ (a "
              "parameter is stored and shown: let the build host in by its address)",
              pattern=r"http://[^\s/@]+(/\S*)?", operator_only=True),
    Parameter("with_docs", "boolean", True, "false: no /usr/share/{doc,man,info,locale} "
              "(copyright files kept), now and for packages installed later"),
    Parameter("install_recommends", "boolean", False,
              "install the template's packages' recommended packages"),
    Parameter("initramfs_modules", "list", list(CLOUD_DRIVERS), "drivers to put in the "
              "initramfs, or [\"most\"] for Debian's MODULES=most",
              pattern=r"[A-Za-z0-9_-]{1,64}"),
    Parameter("kernel_cmdline", "string", "", "appended to the kernel command line",
              pattern=r"[A-Za-z0-9_.,:=/+@ -]{0,512}"),
    Parameter("jeos_cache_entries", "integer", 4, "JEOS trees kept", minimum=1, maximum=64,
              operator_only=True),
    Parameter("deb_cache_max_age_days", "integer", 30, "packages no build used for this long "
              "leave the cache", minimum=1, maximum=3650, operator_only=True),
    Parameter("command_timeout", "integer", 3600, "seconds per template command", minimum=1,
              maximum=86400, operator_only=True),
]


_URL = Parameter("url", "url")


def checked_url(value: str, what: str) -> str:
    """`value` if it is an http(s) URL without white space, quotes or control characters (the
    grammar of declared ``url`` parameters): it goes into apt's sources and configuration."""
    try:
        return str(_URL.coerce(value, what))
    except ParameterError:
        raise BuildError(f"the template's {what} {value.strip()[:200]!r} is not an http:// or "
                         "https:// URL without white space, quotes or control characters") \
            from None


@dataclass(frozen=True)
class Settings:
    mirror: str | None  # None: an ISO install, and no mirror configured
    security_mirror: str | None  # None: no security suite
    components: tuple[str, ...]
    apt_proxy: str | None  # used while building only, never written into the image
    with_docs: bool  # False: no /usr/share/{doc,man,info,locale}, now or for later installs
    install_recommends: bool  # for the template's packages
    initramfs_modules: tuple[str, ...] | None  # None: Debian's MODULES=most
    kernel_cmdline: str  # appended to root=… ro console=…
    jeos_cache_entries: int
    deb_cache_max_age_days: int
    command_timeout: int  # seconds, per template command
    egress_allow: tuple[str, ...]  # URLs the operator chose, which apt in the sandbox may reach

    @classmethod
    def read(cls, template: Template, parameters: Mapping[str, Any]) -> Settings:
        """The settings of a build of `template` with the resolved `parameters`."""
        tdl_mirror = template.os.install_url if template.os.install_type == "url" else None
        mirror = parameters["mirror"] or (tdl_mirror and checked_url(tdl_mirror,
                                                                     "<install><url>"))
        mirror = mirror.rstrip("/") if mirror else None
        security_mirror = None
        if parameters["security_updates"]:
            security_mirror = (parameters["security_mirror"] or
                               (mirror and _security_mirror(mirror)))
        modules = parameters["initramfs_modules"]
        kernel_cmdline = " ".join(filter(None, (parameters["kernel_cmdline"],
                                                template.os.kernelparam or "")))
        return cls(
            mirror=mirror,
            security_mirror=security_mirror.rstrip("/") if security_mirror else None,
            components=tuple(parameters["components"]),
            apt_proxy=parameters["apt_proxy"],
            with_docs=parameters["with_docs"],
            install_recommends=parameters["install_recommends"],
            initramfs_modules=None if modules == ["most"] else tuple(modules),
            kernel_cmdline=kernel_cmdline.strip(),
            jeos_cache_entries=parameters["jeos_cache_entries"],
            deb_cache_max_age_days=parameters["deb_cache_max_age_days"],
            command_timeout=parameters["command_timeout"],
            # operator-only parameters: the operator chose them (or let this client choose);
            # the template's own URL gets the sandbox's default policy, nothing more
            egress_allow=tuple(url for url in (parameters["mirror"],
                                               parameters["security_mirror"]) if url),
        )
