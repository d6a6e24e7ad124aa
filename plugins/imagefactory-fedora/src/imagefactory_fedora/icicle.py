"""The ICICLE of an installed guest, from the package list its ``%post`` printed."""

from __future__ import annotations

from imagefactory_core.plugin import Template, build_icicle

from . import console
from .kickstart import Markers


def icicle(console_text: str, markers: Markers, template: Template) -> str:
    """ICICLE XML: one ``<package>`` per ``rpm -qa`` line (name-version-release.arch), with
    ``<icicle><extra_command>``'s matching line when the template has one."""
    pairs = console.packages(console_text, markers, bool(template.os.icicle_extra_command))
    return build_icicle(pairs, template.description)
