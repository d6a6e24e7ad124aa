"""The plugin's knobs, read from the request's parameters first, then from the plugin's
configuration (``plugins.ec2`` in imagefactory.conf), then defaults, and checked once so that a
typo fails the build at once with the accepted values instead of halfway through an upload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagefactory_core.errors import BuildError

from .disk_format import FORMATS

UPLOADS = ("ebs", "s3")
BOOT_MODES = ("uefi-preferred", "uefi", "legacy-bios")
DEFAULT_THREADS = 16
MAX_THREADS = 128


def _lookup(name: str, parameters: Mapping[str, Any], config: Mapping[str, Any],
            default: Any = None) -> Any:
    for source in (parameters, config):
        value = source.get(name)
        if value is not None and value != "":
            return value
    return default


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise BuildError(f"{name} must be one of {', '.join(choices)}, not '{value}'")
    return text


def image_format(parameters: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """``ec2_image_format``: the target image's format, raw unless asked."""
    return _choice("ec2_image_format", _lookup("ec2_image_format", parameters, config, "raw"),
                   FORMATS)


@dataclass(frozen=True)
class PushSettings:
    upload: str  # "ebs": EBS direct APIs; "s3": S3 multipart upload + ImportSnapshot
    threads: int  # concurrent PutSnapshotBlock / UploadPart requests
    boot_mode: str | None  # None: read it from the disk
    s3_bucket: str | None  # None: imagefactory-import-<account>-<region>

    @classmethod
    def read(cls, parameters: Mapping[str, Any], config: Mapping[str, Any]) -> PushSettings:
        threads = _lookup("ec2_upload_threads", parameters, config, DEFAULT_THREADS)
        try:
            threads = int(threads)
        except (TypeError, ValueError):
            threads = 0
        if not 1 <= threads <= MAX_THREADS:
            raise BuildError(f"ec2_upload_threads must be a whole number from 1 to {MAX_THREADS}")
        boot_mode = _lookup("ec2_boot_mode", parameters, config)
        return cls(
            upload=_choice("ec2_upload", _lookup("ec2_upload", parameters, config, "ebs"),
                           UPLOADS),
            threads=threads,
            boot_mode=_choice("ec2_boot_mode", boot_mode, BOOT_MODES) if boot_mode else None,
            s3_bucket=_lookup("ec2_s3_bucket", parameters, config),
        )
