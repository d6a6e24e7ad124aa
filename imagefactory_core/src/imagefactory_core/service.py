"""The use cases behind the REST API: create images (with cascades), list, show, delete.

A request is decided once, here, before any record exists: the template is parsed and
validated, the OS and cloud plugins are chosen, the parameters are checked against the
declarations of every plugin the request will call and resolved for each of them. The result
is a `Plan` that every job of the request carries; nothing downstream decides it again, and a
rejected request leaves nothing behind. Secrets (the template in clear, secret parameters,
callback URLs, credentials) travel in the plan and the job; records hold redacted copies only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .builds.dispatch import Dispatcher
from .builds.engine import BuildEngine
from .builds.job import Job, Plan
from .config import Config
from .errors import Conflict, InvalidRequest, NotFound
from .model import ImageKind, ImageRecord, ImageRef, Status
from .parameters import Declarations, resolve
from .plugins import PluginHost, PluginInfo
from .redaction import REDACTED, redact_parameters, redact_url
from .store import ImageStore
from .tdl import Template, parse_template, redact_template


@dataclass(frozen=True)
class Request:
    """What a client asked for, besides the image's own fields: its parameters as given, and
    who it is (the OAuth consumer key; None when OAuth is off)."""

    parameters: Mapping[str, Any]
    client: str | None = None


class ImageService:
    def __init__(self, config: Config, store: ImageStore, plugins: PluginHost,
                 engine: BuildEngine | Dispatcher):
        self.config = config
        self.store = store
        self.plugins = plugins
        self.engine = engine

    # -- deciding -------------------------------------------------------------------------------
    def _template(self, text: str | None) -> Template:
        if not text:
            raise InvalidRequest("missing parameter 'template' (TDL XML text)")
        return parse_template(text, require_rootpw=self.config.tdl_require_root_pw,
                              max_bytes=self.config.max_template_bytes)

    def _callbacks(self, parameters: Mapping[str, Any]) -> list[str]:
        callbacks = parameters.get("callbacks", [])
        if isinstance(callbacks, str):
            callbacks = [callbacks]
        if not isinstance(callbacks, list):
            raise InvalidRequest("parameters.callbacks must be a list of http(s) URLs")
        for url in callbacks:
            try:
                parts = urlsplit(url) if isinstance(url, str) else None
                usable = (parts is not None and parts.scheme in ("http", "https")
                          and bool(parts.hostname) and parts.port != 0)
            except ValueError:  # urlsplit or .port: brackets or a port out of range
                usable = False
            if not usable:
                raise InvalidRequest(f"parameters.callbacks: {redact_url(str(url))!r} is not "
                                     "an http(s) URL")
            refused = self.config.outbound_policy().address_refusal(url)
            if refused:
                raise InvalidRequest(f"parameters.callbacks: {redact_url(url)!r} is {refused}, "
                                     "which this service does not call (the operator may "
                                     "allow it: configuration outbound_allow)")
        return [str(u) for u in callbacks]

    def _granted(self, client: str | None) -> list[str]:
        """The operator-only parameters `client` may set (``*`` entries apply to every client,
        signed or not)."""
        grants = self.config.operator_parameters
        return [*grants.get("*", []), *(grants.get(client, []) if client else [])]

    def _plan(self, request: Request, template_text: str | None, template: Template | None,
              called: tuple[PluginInfo, ...], *, os_plugin: str | None,
              cloud_plugin: str | None = None, target: str | None = None,
              provider: str | dict[str, Any] | None = None,
              credentials: dict[str, Any] | None = None) -> Plan:
        """Check the request's parameters against the plugins it will call (`called`) and
        resolve each plugin's values; let the cloud plugin check a push's provider."""
        callbacks = self._callbacks(request.parameters)
        declarations = self.plugins.declarations(list(called))
        typed = declarations.check(request.parameters, self._granted(request.client))
        resolved = {info.id: resolve(info.parameters, typed, self.plugins.config_of(info.id))
                    for info in called}
        if provider is not None:
            cloud = next(info for info in called if info.id == cloud_plugin)
            self._check_provider(cloud, target or "", provider, credentials, resolved[cloud.id])
        return Plan(template=template_text, os_plugin=os_plugin, cloud_plugin=cloud_plugin,
                    target=target, parameters=resolved, callbacks=callbacks,
                    provider=provider, _parsed=template)

    def _check_provider(self, cloud: PluginInfo, target: str, provider: str | dict[str, Any],
                        credentials: dict[str, Any] | None,
                        parameters: Mapping[str, Any]) -> None:
        """A 400 when the cloud plugin refuses the provider or credentials (an endpoint the
        operator did not list, a setting only the operator may choose)."""
        self.plugins.check_provider(cloud, target, provider, credentials or {}, parameters,
                                    self.config.outbound_policy())

    def _check_unpush(self, record: ImageRecord, provider: str | dict[str, Any] | None,
                      credentials: dict[str, Any]) -> None:
        """Check a provider DELETE's provider (the push's when it gives none) as a push's."""
        plan = self._stored_plan(record.id)
        cloud = self.plugins.loaded_by_id(plan.cloud_plugin)
        if cloud is not None:
            self._check_provider(cloud, plan.target or "", provider or plan.provider or "",
                                 credentials, plan.parameters.get(cloud.id, {}))

    def _stored_plan(self, image_id: str) -> Plan:
        return Plan.from_json(self.store.sealed(image_id))

    def _usable_parent(self, image_id: str, kind: ImageKind) -> ImageRecord:
        parent = self.store.get(image_id, kind)
        if parent.status in (Status.FAILED, Status.DELETED, Status.DELETING,
                             Status.DELETEFAILED):
            detail = f": {parent.status_detail.error}" if parent.status_detail.error else ""
            raise Conflict(f"{kind.value} {image_id} is {parent.status.value}{detail}; "
                           "build from another image")
        return parent

    def _loaded(self, plugin_id: str | None, image_id: str) -> PluginInfo:
        """The plugin that built image `image_id`, which its children need again."""
        info = self.plugins.loaded_by_id(plugin_id)
        if info is None:
            raise Conflict(f"image {image_id} was built by plugin {plugin_id!r}, which is not "
                           "loaded now; GET /imagefactory/plugins says why")
        return info

    # -- creation -------------------------------------------------------------------------------
    def _shown(self, request: Request, declarations: Declarations) -> dict[str, Any]:
        """The request's parameters fit to store and show: secret ones masked."""
        secret = {name for name in request.parameters
                  if any(p.secret for _, p in declarations.owners(name))}
        return redact_parameters({name: REDACTED if name in secret else value
                                  for name, value in request.parameters.items()})

    def _submit(self, kind: ImageKind, plan: Plan, request: Request, called: list[PluginInfo],
                *, credentials: dict[str, Any] | None = None, **links: str | None,
                ) -> ImageRecord:
        template = plan.template
        record = self.store.create(
            kind,
            redacted_template=redact_template(template) if template else None,
            parameters=self._shown(request, self.plugins.declarations(called)),
            sealed=plan.to_json(),
            **links,
        )
        parent = record.target_image_id or record.base_image_id
        self.engine.submit(record, Job(record.id, kind, "build", parent, plan, credentials))
        return record

    def create_base(self, template_text: str | None, request: Request) -> ImageRecord:
        template = self._template(template_text)
        os_plugin = self.plugins.resolve_os(template.os)
        plan = self._plan(request, template_text, template, (os_plugin,), os_plugin=os_plugin.id)
        return self._submit(ImageKind.BASE, plan, request, [os_plugin])

    def create_target(self, target: str | None, request: Request, *,
                      base_image_id: str | None = None, template_text: str | None = None,
                      target_image_id: str | None = None) -> ImageRecord:
        if target_image_id:
            if base_image_id or template_text:
                raise InvalidRequest("a target image made from a target image takes no "
                                     "base_image_id or template (it has its source's)")
            return self._derived_target(target, request, target_image_id)
        return self._target(target, request, base_image_id, template_text)[0]

    def _derived_target(self, target: str | None, request: Request,
                        target_image_id: str) -> ImageRecord:
        """Create a target image from another target image (an OVA of a vsphere image): only
        its cloud plugin is called, with the source's template; it keeps the source's base."""
        cloud, canonical = self.plugins.resolve_cloud(target)
        sources = self.plugins.cloud_target(canonical).from_targets
        source = self._usable_parent(target_image_id, ImageKind.TARGET)
        if source.target not in sources:
            made_from = (f"target images of {', '.join(sources)}" if sources
                         else "base images (give base_image_id or a template)")
            raise InvalidRequest(f"target {canonical!r} is made from {made_from}, not from "
                                 f"target image {target_image_id} ({source.target!r})")
        built = self._stored_plan(target_image_id)
        plan = self._plan(request, built.template, built.parsed_template(), (cloud,),
                          os_plugin=built.os_plugin, cloud_plugin=cloud.id, target=canonical)
        return self._submit(ImageKind.TARGET, plan, request, [cloud],
                            base_image_id=source.base_image_id, target_image_id=source.id,
                            target=canonical)

    def _target(self, target: str | None, request: Request, base_image_id: str | None,
                template_text: str | None, provider: str | dict[str, Any] | None = None,
                credentials: dict[str, Any] | None = None,
                ) -> tuple[ImageRecord, Plan, list[PluginInfo]]:
        """Create a target image (and its base first when given a template); return it with
        its plan and the plugins that plan calls."""
        cloud, canonical = self.plugins.resolve_cloud(target)
        sources = self.plugins.cloud_target(canonical).from_targets
        if sources:
            raise InvalidRequest(f"target {canonical!r} is made from a target image of "
                                 f"{', '.join(sources)}: give its target_image_id")
        if base_image_id and template_text:
            raise InvalidRequest("give either a base image id or a template, not both")
        if base_image_id:
            self._usable_parent(base_image_id, ImageKind.BASE)
            base_plan = self._stored_plan(base_image_id)
            os_plugin = self._loaded(base_plan.os_plugin, base_image_id)
            template_text, template = base_plan.template, base_plan.parsed_template()
        else:
            template = self._template(template_text)
            os_plugin = self.plugins.resolve_os(template.os)
        called = [os_plugin, cloud]
        plan = self._plan(request, template_text, template, tuple(called),
                          os_plugin=os_plugin.id, cloud_plugin=cloud.id, target=canonical,
                          provider=provider, credentials=credentials)
        if not base_image_id:
            base_image_id = self._submit(ImageKind.BASE, plan, request, called).id
        record = self._submit(ImageKind.TARGET, plan, request, called,
                              base_image_id=base_image_id, target=canonical)
        return record, plan, called

    def create_provider(self, target: str | None, provider: str | dict[str, Any] | None,
                        credentials: dict[str, Any] | None, request: Request, *,
                        target_image_id: str | None = None, base_image_id: str | None = None,
                        template_text: str | None = None) -> ImageRecord:
        missing = [name for name, value in (("provider", provider), ("credentials", credentials))
                   if not value]
        if missing:
            raise InvalidRequest(f"missing parameter(s) {', '.join(missing)}: a provider image "
                                 "needs the cloud provider and its credentials")
        if target_image_id:
            target_image = self._usable_parent(target_image_id, ImageKind.TARGET)
            cloud, canonical = self.plugins.resolve_cloud(target_image.target)
            if target and self.plugins.resolve_cloud(target)[1] != target_image.target:
                raise InvalidRequest(f"target image {target_image_id} was built for "
                                     f"{target_image.target!r}, not {target!r}")
            built = self._stored_plan(target_image_id)
            called = [cloud]
            plan = self._plan(request, built.template, None, (cloud,),
                              os_plugin=built.os_plugin, cloud_plugin=cloud.id,
                              target=canonical, provider=provider, credentials=credentials)
        else:
            if not target:
                raise InvalidRequest("missing parameter 'target' (a cloud target such as 'ec2')")
            target_image, plan, called = self._target(target, request, base_image_id,
                                                      template_text, provider, credentials)
        provider_text = json.dumps(provider) if isinstance(provider, dict) else provider
        return self._submit(ImageKind.PROVIDER, plan, request, called, credentials=credentials,
                            target_image_id=target_image.id, target=target_image.target,
                            provider=provider_text)

    # -- reading and deleting -------------------------------------------------------------------
    def get(self, kind: ImageKind, image_id: str, **parents: str) -> ImageRecord:
        """One image; `parents` (e.g. ``base_image_id=…``) must match for nested URLs."""
        return _belonging(self.store.get(image_id, kind), parents)

    def get_with_children(self, kind: ImageKind, image_id: str,
                          **parents: str) -> tuple[ImageRecord, list[ImageRef] | None]:
        """`get`, and the images made from it (None for a provider image)."""
        record, children = self.store.get_with_children(image_id, kind)
        return _belonging(record, parents), children

    def delete(self, record: ImageRecord, request_provider: str | dict[str, Any] | None = None,
               credentials: dict[str, Any] | None = None, *, target: str | None = None,
               request: Request | None = None) -> None:
        """Delete an image. A provider image is deleted on its cloud with `credentials` (by
        the plugin that pushed it: `target` only says the client means the cloud); a DELETE
        that names no cloud (no provider, target or credentials) forgets it and leaves it
        there. The request's ``callbacks`` hear the deletion."""
        callbacks = self._delete_callbacks(request)
        cloud = [name for name, value in (("provider", request_provider),
                                          ("credentials", credentials), ("target", target))
                 if value]
        if cloud and record.kind is not ImageKind.PROVIDER:
            kind = record.kind.singular.replace("_", " ")
            raise InvalidRequest(f"{', '.join(cloud)}: only provider images are deleted on a "
                                 f"cloud; DELETE a {kind} without them")
        if record.status is Status.DELETED:
            return
        if record.kind is ImageKind.PROVIDER:
            if credentials and record.identifier_on_provider:
                self._check_unpush(record, request_provider, credentials)
            self.engine.delete_provider(record, request_provider, credentials, callbacks,
                                        forget=not cloud)
        else:
            self.engine.delete_local(record, callbacks)

    def _delete_callbacks(self, request: Request | None) -> list[str]:
        """The callbacks a DELETE names: the one parameter it takes (the delete runs with the
        parameters its image was built or pushed with)."""
        if request is None:
            return []
        other = sorted(set(request.parameters) - {"callbacks"})
        if other:
            raise InvalidRequest(f"parameter(s) {', '.join(other)}: a DELETE takes only "
                                 "'callbacks'; it runs with the parameters its image was built "
                                 "or pushed with")
        return self._callbacks(request.parameters)


def _belonging(record: ImageRecord, parents: dict[str, str]) -> ImageRecord:
    """`record`, if its parent links are `parents` (the ids a nested URL names)."""
    for column, value in parents.items():
        if getattr(record, column) != value:
            raise NotFound(f"{record.kind.value} {record.id} does not belong to {value}")
    return record
