"""What each kind of job does, from a queued image to the values stored when it ends.

The engine (`engine.py`) decides when a job runs; this module decides what it does, calling
plugins through the `PluginHost` facade.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..context import BuildContext
from ..errors import BuildError
from ..model import ImageRecord
from ..plugins import PluginHost
from ..processes import kill_recorded_groups
from ..store import ImageStore
from ..tdl import Template, parse_template


@dataclass
class JobSecrets:
    """What a job needs but the database never holds in clear."""

    template: str | None = None
    callbacks: list[str] = field(default_factory=list)
    provider: str | dict[str, Any] | None = None
    credentials: dict[str, Any] | None = None


class Work:
    def __init__(self, store: ImageStore, plugins: PluginHost,
                 plugin_config: Callable[[str], Mapping[str, Any]]):
        self.store = store
        self.plugins = plugins
        self.plugin_config = plugin_config

    def template(self, secrets: JobSecrets) -> Template:
        if not secrets.template:
            raise BuildError("this image has no template to build from")
        return parse_template(secrets.template)

    def base(self, record: ImageRecord, ctx: BuildContext, secrets: JobSecrets) -> dict[str, Any]:
        template = self.template(secrets)
        if template.os.rootpw:
            ctx.add_secret(template.os.rootpw)
        os_plugin = self.plugins.resolve_os(template.os)
        ctx.progress(0, f"Building {template.os.name} {template.os.version} "
                        f"{template.os.arch} with plugin {os_plugin.id}")
        result = self.plugins.create_base_image(os_plugin, ctx, template, record.parameters)
        _require_body(ctx)
        return {"icicle": result.icicle,
                "properties": {**result.properties, "os_plugin": os_plugin.id}}

    def target(self, record: ImageRecord, ctx: BuildContext,
               secrets: JobSecrets) -> dict[str, Any]:
        template = self.template(secrets)
        if template.os.rootpw:
            ctx.add_secret(template.os.rootpw)
        assert record.base_image_id and record.target
        base = self.store.get(record.base_image_id)
        cloud, target = self.plugins.resolve_cloud(record.target)
        content = self.plugins.target_content(cloud, target, template, record.parameters)
        source = base.body_path
        icicle = base.icicle
        if content:
            os_plugin = self.plugins.get(base.properties.get("os_plugin") or
                                         self.plugins.resolve_os(template.os).id)
            source = ctx.workdir / "disk.raw"
            ctx.progress(0, f"Copying base image {base.id} for {target} customisation")
            ctx.run(["cp", "--sparse=always", base.body_path, source])
            ctx.check_cancelled()
            ctx.progress(5, f"Adding {target} content with plugin {os_plugin.id}")
            os_ctx = ctx.scaled(5, 60)
            os_ctx.config = self.plugin_config(os_plugin.id)  # the OS plugin's own settings
            applied = self.plugins.apply_target_content(os_plugin, os_ctx, template, content,
                                                        source)
            icicle = applied.icicle or icicle
        ctx.progress(60, f"Creating {target} image with plugin {cloud.id}")
        result = self.plugins.create_target_image(cloud, ctx.scaled(60, 100), template, base,
                                                  source, target, record.parameters)
        _require_body(ctx)
        return {"icicle": icicle, "properties": {**result.properties, "cloud_plugin": cloud.id}}

    def push(self, record: ImageRecord, ctx: BuildContext, secrets: JobSecrets) -> dict[str, Any]:
        assert record.target_image_id and record.target
        target_image = self.store.get(record.target_image_id)
        cloud, target = self.plugins.resolve_cloud(record.target)
        template = parse_template(secrets.template) if secrets.template else None
        _mask(ctx, secrets.credentials)
        ctx.progress(0, f"Pushing to {target} provider {_provider_name(secrets.provider)}")
        result = self.plugins.push_image(cloud, ctx, template, target_image, target,
                                         secrets.provider or "", secrets.credentials or {},
                                         record.parameters)
        return {"identifier_on_provider": result.identifier_on_provider,
                "provider_account_identifier": result.provider_account_identifier,
                "properties": {**record.properties, **result.properties}}

    def unpush(self, record: ImageRecord, ctx: BuildContext, secrets: JobSecrets) -> None:
        cloud, target = self.plugins.resolve_cloud(record.target)
        _mask(ctx, secrets.credentials)
        ctx.progress(0, f"Deleting {record.identifier_on_provider} from {target}")
        self.plugins.delete_from_provider(cloud, ctx, record, target,
                                          secrets.provider or record.provider or "",
                                          secrets.credentials or {}, record.parameters)


def _mask(ctx: BuildContext, credentials: Any) -> None:
    """Mask every credential value in the log, the commands logged and the error shown,
    whatever the plugin does with them."""
    if isinstance(credentials, dict):
        for value in credentials.values():
            _mask(ctx, value)
    elif isinstance(credentials, list):
        for value in credentials:
            _mask(ctx, value)
    elif isinstance(credentials, str) and credentials.strip():
        ctx.add_secret(credentials)


def _require_body(ctx: BuildContext) -> None:
    if not ctx.body_path.exists():
        raise BuildError(f"the plugin finished without writing the image body {ctx.body_path}")


def _provider_name(provider: str | dict[str, Any] | None) -> str:
    if isinstance(provider, dict):
        return str(provider.get("name") or provider.get("region") or provider.get("auth_url")
                   or json.dumps(sorted(provider)))
    return provider or "(none)"


def remove_tree(path: Any) -> None:
    """Remove a job's work directory. Commands a killed service left running there are ended
    first, then mounts left inside are unmounted, so rmtree never descends into a live
    filesystem."""
    kill_recorded_groups(Path(path))
    mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True,
                            check=False).stdout.split()
    for mount in sorted((m for m in mounts if m.startswith(str(path))), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)
    shutil.rmtree(path, ignore_errors=True)
