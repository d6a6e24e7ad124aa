"""Plugin discovery and the typed facade the rest of the core calls.

Plugins are found with stevedore over the entry-point group ``imagefactory.plugins`` and
registered in a pluggy PluginManager. A plugin that fails to import, declares a misspelt hook or
raises from its registration hook is recorded as broken, reported by ``/plugins`` with its error,
and skipped: one broken plugin must not take the service down.

Work hooks are called through `subset_hook_caller` on exactly the plugin chosen for the image,
so plugins never have to check whether a call is theirs.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import Distribution, entry_points
from pathlib import Path
from typing import Any

import pluggy
from stevedore import NamedExtensionManager

from . import NAME, hookspecs
from .context import BuildContext
from .errors import BuildError, InvalidRequest, NotFound
from .model import BuildResult, CloudTarget, ImageRecord, OSTarget, PushResult, TargetContent
from .tdl import OSSpec, Template

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = f"{NAME}.plugins"


@dataclass
class PluginInfo:
    """What the service knows about one plugin, for matching and for ``/plugins``."""

    id: str
    plugin: object | None
    distribution: Distribution | None = None
    os_targets: list[OSTarget] = field(default_factory=list)
    cloud_targets: list[CloudTarget] = field(default_factory=list)
    error: str | None = None
    disabled: bool = False

    @property
    def type(self) -> str | None:
        if self.os_targets:
            return "os"
        if self.cloud_targets:
            return "cloud"
        return None

    def metadata(self) -> dict[str, Any]:
        """The ``/plugins`` view: the seed's keys, read from the distribution's metadata."""
        meta = self.distribution.metadata if self.distribution else None
        author = meta.get("Author") if meta else None
        email = meta.get("Author-email") if meta else None
        if author is None and email and "<" in email:
            author, email = (part.strip(" >") for part in email.split("<", 1))
        urls = meta.get_all("Project-URL") if meta else None
        targets: list[list[str | None]] = [
            [t.name, t.versions, ",".join(t.arches)] for t in self.os_targets
        ] + [[t.name, *t.aliases] for t in self.cloud_targets]
        return {
            "_type": "plugin",
            "id": self.id,
            "type": self.type,
            "description": meta.get("Summary") if meta else None,
            "version": self.distribution.version if self.distribution else None,
            "license": (meta.get("License-Expression") or meta.get("License")) if meta else None,
            "maintainer": {
                "name": author,
                "email": email,
                "url": urls[0].split(",", 1)[-1].strip() if urls else None,
            },
            "targets": targets,
            "distribution": self.distribution.metadata["Name"] if self.distribution else None,
            "status": "disabled" if self.disabled else ("broken" if self.error else "loaded"),
            "error": self.error,
        }


class PluginHost:
    """The PluginManager behind typed methods; built once per service by `load_plugins`."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(NAME)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    # -- loading --------------------------------------------------------------------------------
    def add(self, name: str, plugin: object, distribution: Distribution | None = None) -> None:
        """Register one plugin and ask what it offers; record it as broken if anything fails."""
        info = PluginInfo(id=name, plugin=plugin, distribution=distribution)
        self.infos[name] = info
        try:
            self.pm.register(plugin, name=name)
            self._check_hooks(name)
            for impl in self.pm.hook.imagefactory_os_targets.get_hookimpls():
                if impl.plugin_name == name:
                    info.os_targets = list(impl.function() or [])
            for impl in self.pm.hook.imagefactory_cloud_targets.get_hookimpls():
                if impl.plugin_name == name:
                    info.cloud_targets = self._unique_targets(name, impl.function() or [])
        except Exception as exc:  # a plugin's own bug must not stop the service
            log.exception("plugin %s is broken and was not loaded", name)
            info.error = f"{type(exc).__name__}: {exc}"
            info.os_targets, info.cloud_targets = [], []
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)

    def _check_hooks(self, name: str) -> None:
        """Fail loudly on hook implementations that match no spec (a misspelt hook name)."""
        plugin = self.pm.get_plugin(name)
        for hook_name in dir(plugin):
            if hook_name.startswith("imagefactory_") and not hasattr(self.pm.hook, hook_name):
                raise pluggy.PluginValidationError(
                    plugin, f"unknown hook {hook_name!r}: see imagefactory_core.hookspecs"
                )
        self.pm.check_pending()

    def _unique_targets(self, name: str, targets: Iterable[CloudTarget]) -> list[CloudTarget]:
        kept = []
        for target in targets:
            owner = self._cloud_owner(target.name)
            if owner is not None:
                log.error("plugin %s: target %r already served by %s; ignored",
                          name, target.name, owner.id)
                continue
            kept.append(target)
        return kept

    def disabled(self, name: str, distribution: Distribution | None) -> None:
        self.infos[name] = PluginInfo(id=name, plugin=None, distribution=distribution,
                                      disabled=True)

    # -- queries --------------------------------------------------------------------------------
    def get(self, plugin_id: str) -> PluginInfo:
        try:
            return self.infos[plugin_id]
        except KeyError:
            raise NotFound(f"no plugin {plugin_id!r}; known: {', '.join(sorted(self.infos))}") \
                from None

    def loaded(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.plugin is not None and i.error is None]

    def _cloud_owner(self, target: str) -> PluginInfo | None:
        wanted = target.lower()
        for info in self.loaded():
            for t in info.cloud_targets:
                if wanted == t.name.lower() or wanted in (a.lower() for a in t.aliases):
                    return info
        return None

    def resolve_os(self, spec: OSSpec) -> PluginInfo:
        """The OS plugin for (name, version, arch), or a 400 naming the known ones."""
        for info in self.loaded():
            for t in info.os_targets:
                if (t.name.lower() == spec.name.lower()
                        and re.fullmatch(t.versions, spec.version, re.IGNORECASE)
                        and spec.arch in t.arches):
                    return info
        known = "; ".join(
            f"{t.name} {t.versions} ({', '.join(t.arches)})"
            for i in self.loaded() for t in i.os_targets
        ) or "none (no OS plugin is installed)"
        raise InvalidRequest(
            f"no OS plugin builds {spec.name} {spec.version} {spec.arch}; known: {known}"
        )

    def resolve_cloud(self, target: str | None) -> tuple[PluginInfo, str]:
        """The cloud plugin and canonical target name for `target`, or a 400 naming the known."""
        if not target:
            raise InvalidRequest("missing parameter 'target' (a cloud target such as 'ec2')")
        info = self._cloud_owner(target)
        if info is None:
            known = ", ".join(sorted(t.name for i in self.loaded() for t in i.cloud_targets))
            raise InvalidRequest(
                f"unknown target {target!r}; known targets: {known or 'none (no cloud plugin)'}"
            )
        canonical = next(t.name for t in info.cloud_targets
                         if target.lower() in {t.name.lower(), *(a.lower() for a in t.aliases)})
        return info, canonical

    # -- work hooks -----------------------------------------------------------------------------
    def _call(self, info: PluginInfo, hook_name: str, **kwargs: Any) -> Any:
        others = [p for p in self.pm.get_plugins() if p is not info.plugin]
        caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
        if not caller.get_hookimpls():
            raise BuildError(f"plugin {info.id} does not implement {hook_name}")
        return caller(**kwargs)

    def create_base_image(self, info: PluginInfo, ctx: BuildContext, template: Template,
                          parameters: dict[str, Any]) -> BuildResult:
        result = self._call(info, "imagefactory_create_base_image", ctx=ctx, template=template,
                            parameters=parameters)
        return result or BuildResult()

    def target_content(self, info: PluginInfo, target: str, template: Template,
                       parameters: dict[str, Any]) -> TargetContent:
        others = [p for p in self.pm.get_plugins() if p is not info.plugin]
        caller = self.pm.subset_hook_caller("imagefactory_target_content", remove_plugins=others)
        return caller(target=target, template=template, parameters=parameters) or TargetContent()

    def apply_target_content(self, info: PluginInfo, ctx: BuildContext, template: Template,
                             content: TargetContent, disk: Path) -> BuildResult:
        result = self._call(info, "imagefactory_apply_target_content", ctx=ctx,
                            template=template, content=content, disk=disk)
        return result or BuildResult()

    def create_target_image(self, info: PluginInfo, ctx: BuildContext, template: Template,
                            base_image: ImageRecord, source_disk: Path, target: str,
                            parameters: dict[str, Any]) -> BuildResult:
        result = self._call(info, "imagefactory_create_target_image", ctx=ctx, template=template,
                            base_image=base_image, source_disk=source_disk, target=target,
                            parameters=parameters)
        return result or BuildResult()

    def push_image(self, info: PluginInfo, ctx: BuildContext, template: Template | None,
                   target_image: ImageRecord, target: str, provider: str | dict[str, Any],
                   credentials: dict[str, Any], parameters: dict[str, Any]) -> PushResult:
        result = self._call(info, "imagefactory_push_image", ctx=ctx, template=template,
                            target_image=target_image, target=target, provider=provider,
                            credentials=credentials, parameters=parameters)
        if not isinstance(result, PushResult):
            raise BuildError(f"plugin {info.id} returned no provider image identifier")
        return result

    def delete_from_provider(self, info: PluginInfo, ctx: BuildContext,
                             provider_image: ImageRecord, target: str,
                             provider: str | dict[str, Any], credentials: dict[str, Any],
                             parameters: dict[str, Any]) -> None:
        self._call(info, "imagefactory_delete_from_provider", ctx=ctx,
                   provider_image=provider_image, target=target, provider=provider,
                   credentials=credentials, parameters=parameters)


def load_plugins(
    disabled: Iterable[str] = (),
    extra: Iterable[tuple[str, object]] = (),
    discover: bool = True,
    modules: Iterable[str] = (),
) -> PluginHost:
    """Discover installed plugins (unless `discover` is false) and register `extra` ones.

    `extra` (name, plugin object) pairs let tests and embedders inject plugins without entry
    points; `modules` names plugin modules to import (configuration key `plugin_modules`, for
    plugins under development that are not installed). Plugins named in `disabled` are listed
    as disabled and never imported (only the entry points' names are read, so a blocked
    plugin's code never runs).
    """
    host = PluginHost()
    blocked = {name.strip() for name in disabled if name.strip()}
    if discover:
        found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        failures: dict[str, str] = {}

        def on_failure(_manager: object, entry_point: Any, exc: BaseException) -> None:
            failures[entry_point.name] = f"{type(exc).__name__}: {exc}"
            log.error("plugin %s failed to import: %s", entry_point.name, exc)

        wanted = [name for name in found if name not in blocked]
        # stevedore keeps the group's entry points for the life of the process; read them
        # afresh so they agree with `found` (plugins installed or removed since a last call)
        NamedExtensionManager.ENTRY_POINT_CACHE.pop(ENTRY_POINT_GROUP, None)
        manager = NamedExtensionManager(
            namespace=ENTRY_POINT_GROUP,
            names=wanted,
            invoke_on_load=False,
            on_load_failure_callback=on_failure,
        )
        for ext in manager.extensions:
            host.add(ext.name, ext.plugin, found[ext.name].dist)
        for name, error in failures.items():
            host.infos[name] = PluginInfo(id=name, plugin=None, distribution=found[name].dist,
                                          error=error)
        for name in blocked & found.keys():
            host.disabled(name, found[name].dist)
    for name in modules:
        try:
            extra = [*extra, (name, importlib.import_module(name))]
        except Exception as exc:  # reported on /plugins like a broken entry point
            host.infos[name] = PluginInfo(id=name, plugin=None,
                                          error=f"{type(exc).__name__}: {exc}")
    for name, plugin in extra:
        if name in blocked:
            host.disabled(name, None)
        else:
            host.add(name, plugin)
    return host
