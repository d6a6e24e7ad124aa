"""The plugin's knobs, resolved once per build so that a typo fails at once, not halfway.

Each key is read from the request's parameters first, then from the plugin's configuration
(``plugins.debian`` in imagefactory.conf), then the default. `mirror` falls back to the TDL's
``<install type='url'><url>``: that URL is the template's own say.
Operational keys (cache sizes, time limits) are read from the configuration only: a request
must not be able to change how the service treats its disk or other people's builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagefactory_core.errors import BuildError
from imagefactory_core.tdl import Template

# Storage drivers for the virtual and cloud hardware the images are meant for. With this list
# the initramfs takes about 2 s to build and 8 MB; Debian's own "most" takes 17 s and 30 MB here.
# Drivers are added, not forced: udev loads the ones the machine needs at boot.
CLOUD_DRIVERS = (
    "ext4", "crc32c_generic",
    "virtio_pci", "virtio_blk", "virtio_scsi",
    "sd_mod", "sr_mod", "ahci", "ata_piix", "ata_generic", "nvme",
    "xen_blkfront", "hv_vmbus", "hv_storvsc", "vmw_pvscsi", "mptspi", "mptsas", "megaraid_sas",
)


def _lookup(name: str, sources: tuple[Mapping[str, Any], ...], default: Any = None) -> Any:
    for source in sources:
        value = source.get(name)
        if value is not None and value != "":
            return value
    return default


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise BuildError(f"{name} must be true or false, not '{value}'")


def _words(name: str, value: Any) -> tuple[str, ...]:
    items = value.split() if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) and i for i in items):
        raise BuildError(f"{name} must be a list of words, not '{value}'")
    return tuple(items)


def _url(name: str, value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise BuildError(f"{name} must be an http:// or https:// URL, not '{value}'")
    return text


def _whole(name: str, value: Any, low: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = low - 1
    if number < low:
        raise BuildError(f"{name} must be a whole number of at least {low}, not '{value}'")
    return number


def _security_mirror(mirror: str) -> str | None:
    """deb.debian.org/debian → deb.debian.org/debian-security; other mirrors have no known one."""
    return mirror + "-security" if mirror.endswith("/debian") else None


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

    @classmethod
    def read(cls, template: Template, parameters: Mapping[str, Any],
             config: Mapping[str, Any]) -> Settings:
        request = (parameters, config)
        tdl_mirror = template.os.install_url if template.os.install_type == "url" else None
        mirror = _lookup("mirror", (*request, {"mirror": tdl_mirror}))
        if mirror is not None:
            mirror = _url("mirror", mirror)
        security = _lookup("security_mirror", request)
        if security is None:
            security_mirror = mirror and _security_mirror(mirror)
        elif str(security).strip().lower() in ("none", "no", "false"):
            security_mirror = None
        else:
            security_mirror = _url("security_mirror", security)
        modules = _lookup("initramfs_modules", request, CLOUD_DRIVERS)
        proxy = _lookup("apt_proxy", request)
        kernel_cmdline = " ".join(filter(None, (str(_lookup("kernel_cmdline", request, "")),
                                                template.os.kernelparam or "")))
        return cls(
            mirror=mirror,
            security_mirror=security_mirror,
            components=_words("components", _lookup("components", request, ["main"])),
            apt_proxy=None if proxy is None else _url("apt_proxy", proxy),
            with_docs=_flag("with_docs", _lookup("with_docs", request, True)),
            install_recommends=_flag("install_recommends",
                                     _lookup("install_recommends", request, False)),
            initramfs_modules=None if modules == "most" else _words("initramfs_modules", modules),
            kernel_cmdline=kernel_cmdline.strip(),
            jeos_cache_entries=_whole("jeos_cache_entries",
                                      config.get("jeos_cache_entries", 4), 1),
            deb_cache_max_age_days=_whole("deb_cache_max_age_days",
                                          config.get("deb_cache_max_age_days", 30), 1),
            command_timeout=_whole("command_timeout", config.get("command_timeout", 3600), 1),
        )
