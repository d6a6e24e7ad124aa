"""What the verbs print: JSON for scripts (``--output json``), short text for people."""

from __future__ import annotations

import json
from typing import Any

from .display import KIND, activity, label

PARENT_LINKS = (("base_image_id", "base_image"), ("target_image_id", "target_image"))
CHILD_LISTS = (("target_images", "target_image"), ("provider_images", "provider_image"))


def to_json(value: Any, raw: bool = False) -> str:
    """As the API returned it; `raw` (the original's ``--raw``) on one line."""
    return json.dumps(value) if raw else json.dumps(value, indent=2)


def summary(image: dict[str, Any]) -> list[str]:
    """The lines of ``show``: what a person looks for, not the whole record."""
    rows: list[tuple[str, Any]] = [
        ("id", image["id"]),
        ("kind", KIND.get(image["_type"], image["_type"])),
        ("status", f"{image['status']} ({image.get('percent_complete', 0)}%)"),
        ("activity", activity(image)),
        ("error", (image.get("status_detail") or {}).get("error")),
        ("target", image.get("target")),
        ("provider", _text(image.get("provider"))),
        ("provider id", image.get("identifier_on_provider")),
    ]
    rows += [("parent", f"{kind} {image[link]}") for link, kind in PARENT_LINKS
             if image.get(link)]
    for collection, kind in CHILD_LISTS:
        for entry in (image.get(collection) or {}).get(collection, []):
            rows.append(("child", f"{kind} {next(iter(entry.values()))['id']}"))
    rows = [(name, value) for name, value in rows if value not in (None, "")]
    width = max(len(name) for name, _ in rows)
    return [f"{name + ':':<{width + 1}} {value}" for name, value in rows]


def _text(value: Any) -> str | None:
    return json.dumps(value) if isinstance(value, dict) else value


def started(image: dict[str, Any]) -> list[str]:
    """What a build verb that does not wait prints: the image, and how to follow it."""
    return [*summary(image), f"follow it with: imagefactory log --follow {image['id']}"]


def failure(image: dict[str, Any]) -> str:
    """The one-line reason an image did not COMPLETE."""
    error = (image.get("status_detail") or {}).get("error")
    return f"{label(image)} {image['status']}" + (f": {error}" if error else "")


def listing(entries: list[dict[str, Any]]) -> list[str]:
    return [f"{KIND.get(e['_type'], e['_type']):15} {e['id']}" for e in entries]


def plugins(found: list[dict[str, Any]]) -> list[str]:
    """One line a plugin: id, type, status, version, targets (or why it did not load)."""
    lines = []
    for plugin in found:
        targets = ", ".join(str(t[0]) for t in plugin.get("targets") or [])
        detail = plugin.get("error") or targets
        lines.append(f"{plugin['id']:30} {plugin.get('type') or '-':6} "
                     f"{plugin.get('status') or '-':12} {plugin.get('version') or '-':10} "
                     f"{detail}")
    return lines
