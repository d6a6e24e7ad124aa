"""Plugin discovery and the typed facade the rest of the core calls.

Plugins are found with stevedore over the entry-point group ``imagefactory.plugins`` and
registered in a pluggy PluginManager. A plugin that fails to import, declares a misspelt hook or
raises from its registration hook is recorded as broken, reported by ``/plugins`` with its error,
and skipped: one broken plugin must not take the service down. A plugin that needs another
plugin API version than this core provides is listed as incompatible and never registered.

Work hooks are called through `subset_hook_caller` on exactly the plugin chosen for the image,
so plugins never have to check whether a call is theirs.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import Distribution, entry_points
from pathlib import Path
from typing import Any

import pluggy
from stevedore import NamedExtensionManager

from . import NAME, __version__, hookspecs
from .context import BuildContext
from .errors import BuildError, InvalidRequest, NotFound
from .model import BuildResult, CloudTarget, ImageView, OSTarget, PushResult, TargetContent
from .outbound import OutboundPolicy
from .parameters import CORE, CORE_PARAMETERS, Declarations, Parameter, check_config
from .plugin import API_ATTRIBUTE, API_VERSION
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
    parameters: list[Parameter] = field(default_factory=list)
    api_version: str | None = None
    error: str | None = None
    disabled: bool = False
    incompatible: bool = False

    @property
    def type(self) -> str | None:
        if self.os_targets:
            return "os"
        if self.cloud_targets:
            return "cloud"
        return None

    @property
    def is_loaded(self) -> bool:
        return self.plugin is not None and self.error is None

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        if self.incompatible:
            return "incompatible"
        return "broken" if self.error else "loaded"

    def metadata(self, detailed: bool = False) -> dict[str, Any]:
        """The ``/plugins`` view: the seed's keys, read from the distribution's metadata;
        `detailed` adds the declared parameters (``/plugins/<id>``)."""
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
            "api_version": self.api_version,
            "status": self.status,
            "error": self.error,
        } | ({"parameters": [p.metadata() for p in self.parameters]} if detailed else {})


class PluginHost:
    """The PluginManager behind typed methods; built once per service by `load_plugins`."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(NAME)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._config: dict[str, dict[str, Any]] = {}

    # -- loading --------------------------------------------------------------------------------
    def add(self, name: str, plugin: object, distribution: Distribution | None = None) -> None:
        """Register one plugin and ask what it offers; record it as broken (or incompatible)
        if anything fails."""
        info = PluginInfo(id=name, plugin=plugin, distribution=distribution)
        self.infos[name] = info
        declared = getattr(plugin, API_ATTRIBUTE, None)
        info.api_version = None if declared is None else str(declared)
        problem = _api_problem(declared)
        if problem is not None:
            log.error("plugin %s was not loaded: %s", name, problem)
            info.error, info.incompatible = problem, True
            return
        try:
            self.pm.register(plugin, name=name)
            self._check_hooks(name)
            info.os_targets = list(self._registration(name, "imagefactory_os_targets"))
            info.cloud_targets = self._unique_targets(
                name, self._registration(name, "imagefactory_cloud_targets"))
            info.parameters = self._declared(name)
        except Exception as exc:  # a plugin's own bug must not stop the service
            log.exception("plugin %s is broken and was not loaded", name)
            info.error = f"{type(exc).__name__}: {exc}"
            info.os_targets, info.cloud_targets, info.parameters = [], [], []
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)

    def _registration(self, name: str, hook_name: str) -> list[Any]:
        """What plugin `name`'s registration hook `hook_name` returns ([] without one)."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name == name:
                return list(impl.function() or [])
        return []

    def _declared(self, name: str) -> list[Parameter]:
        parameters = self._registration(name, "imagefactory_parameters")
        names = [p.name for p in parameters if isinstance(p, Parameter)]
        if len(names) != len(parameters):
            raise TypeError("imagefactory_parameters must return Parameter declarations")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"parameters declared twice: {', '.join(repeated)}")
        core = sorted(set(names) & {p.name for p in CORE_PARAMETERS})
        if core:
            raise ValueError(f"parameters reserved by the core: {', '.join(core)}")
        return parameters

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

    def configure(self, sections: dict[str, dict[str, Any]]) -> None:
        """Check each plugin's section of the configuration file against its declarations and
        keep the typed values; a bad key or value raises `InvalidRequest` (the service does not
        start). Sections of plugins that are not loaded are ignored with a warning."""
        self._config = {}
        for plugin_id, section in sections.items():
            info = self.loaded_by_id(plugin_id)
            if info is None:
                log.warning("configuration plugins.%s: no such plugin is loaded; ignored",
                            plugin_id)
                continue
            self._config[plugin_id] = check_config(plugin_id, info.parameters, section)

    def config_of(self, plugin_id: str) -> dict[str, Any]:
        """The typed values of plugin `plugin_id`'s configuration section."""
        return dict(self._config.get(plugin_id, {}))

    def declarations(self, plugins: list[PluginInfo]) -> Declarations:
        """The parameters a request calling `plugins` may name: theirs and the core's."""
        return Declarations({CORE: CORE_PARAMETERS,
                             **{info.id: info.parameters for info in plugins}})

    # -- queries --------------------------------------------------------------------------------
    def get(self, plugin_id: str) -> PluginInfo:
        try:
            return self.infos[plugin_id]
        except KeyError:
            raise NotFound(f"no plugin {plugin_id!r}; known: {', '.join(sorted(self.infos))}") \
                from None

    def loaded(self) -> list[PluginInfo]:
        return [i for i in self.infos.values() if i.is_loaded]

    def loaded_by_id(self, plugin_id: str | None) -> PluginInfo | None:
        """The loaded plugin `plugin_id` (a job's plan names it), or None."""
        info = self.infos.get(plugin_id or "")
        return info if info is not None and info.is_loaded else None

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

    def cloud_target(self, canonical: str) -> CloudTarget:
        """The `CloudTarget` a loaded plugin declared under the canonical name `canonical`."""
        return next(t for i in self.loaded() for t in i.cloud_targets if t.name == canonical)

    # -- work hooks -----------------------------------------------------------------------------
    def _call(self, info: PluginInfo, hook_name: str, **kwargs: Any) -> Any:
        others = [p for p in self.pm.get_plugins() if p is not info.plugin]
        caller = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
        if not caller.get_hookimpls():
            raise BuildError(f"plugin {info.id} does not implement {hook_name}")
        return caller(**kwargs)

    def create_base_image(self, info: PluginInfo, ctx: BuildContext, template: Template,
                          parameters: Mapping[str, Any]) -> BuildResult:
        result = self._call(info, "imagefactory_create_base_image", ctx=ctx, template=template,
                            parameters=parameters)
        return result or BuildResult()

    def target_content(self, info: PluginInfo, target: str, template: Template,
                       parameters: Mapping[str, Any]) -> TargetContent:
        others = [p for p in self.pm.get_plugins() if p is not info.plugin]
        caller = self.pm.subset_hook_caller("imagefactory_target_content", remove_plugins=others)
        return caller(target=target, template=template, parameters=parameters) or TargetContent()

    def apply_target_content(self, info: PluginInfo, ctx: BuildContext, template: Template,
                             content: TargetContent, disk: Path,
                             parameters: Mapping[str, Any]) -> BuildResult:
        result = self._call(info, "imagefactory_apply_target_content", ctx=ctx,
                            template=template, content=content, disk=disk,
                            parameters=parameters)
        return result or BuildResult()

    def create_target_image(self, info: PluginInfo, ctx: BuildContext, template: Template,
                            base_image: ImageView, source_disk: Path, target: str,
                            parameters: Mapping[str, Any]) -> BuildResult:
        result = self._call(info, "imagefactory_create_target_image", ctx=ctx, template=template,
                            base_image=base_image, source_disk=source_disk, target=target,
                            parameters=parameters)
        return result or BuildResult()

    def check_provider(self, info: PluginInfo, target: str, provider: str | dict[str, Any],
                       credentials: dict[str, Any], parameters: Mapping[str, Any],
                       outbound: OutboundPolicy) -> None:
        """Let the cloud plugin refuse a provider or credentials (`InvalidRequest`, a 400)."""
        others = [p for p in self.pm.get_plugins() if p is not info.plugin]
        caller = self.pm.subset_hook_caller("imagefactory_check_provider", remove_plugins=others)
        try:
            caller(target=target, provider=provider, credentials=credentials,
                   parameters=parameters, outbound=outbound)
        except BuildError as exc:
            raise InvalidRequest(str(exc)) from None

    def push_image(self, info: PluginInfo, ctx: BuildContext, template: Template | None,
                   target_image: ImageView, target: str, provider: str | dict[str, Any],
                   credentials: dict[str, Any], parameters: Mapping[str, Any]) -> PushResult:
        result = self._call(info, "imagefactory_push_image", ctx=ctx, template=template,
                            target_image=target_image, target=target, provider=provider,
                            credentials=credentials, parameters=parameters)
        if not isinstance(result, PushResult):
            raise BuildError(f"plugin {info.id} returned no provider image identifier")
        return result

    def delete_from_provider(self, info: PluginInfo, ctx: BuildContext,
                             provider_image: ImageView, target: str,
                             provider: str | dict[str, Any], credentials: dict[str, Any],
                             parameters: Mapping[str, Any]) -> None:
        self._call(info, "imagefactory_delete_from_provider", ctx=ctx,
                   provider_image=provider_image, target=target, provider=provider,
                   credentials=credentials, parameters=parameters)


def _api_problem(declared: object) -> str | None:
    """Why a plugin declaring `declared` cannot run on this core's plugin API, or None."""
    if declared is None:
        return (f"the plugin declares no plugin API version: add {API_ATTRIBUTE} = "
                f"\"{API_VERSION}\" to its module (see imagefactory_core.plugin)")
    wanted = re.fullmatch(r"(\d+)\.(\d+)", str(declared).strip())
    if wanted is None:
        return f"{API_ATTRIBUTE} = {declared!r} is not a version such as \"{API_VERSION}\""
    major, minor = (int(part) for part in API_VERSION.split("."))
    if int(wanted[1]) != major or int(wanted[2]) > minor:
        return (f"the plugin needs plugin API {declared}; imagefactory-core {__version__} "
                f"provides plugin API {API_VERSION}: install a version of the plugin made "
                f"for API {major}.x")
    return None


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
