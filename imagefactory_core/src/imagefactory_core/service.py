"""The use cases behind the REST API: create images (with cascades), list, show, delete.

Everything is validated before any record exists, so a rejected request leaves nothing
behind. Secrets (the unredacted template, callback URLs, credentials) go to the engine in a
`JobSecrets`; the records hold redacted copies only.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .builds.engine import BuildEngine
from .builds.work import JobSecrets
from .config import Config
from .errors import Conflict, InvalidRequest, NotFound
from .model import ImageKind, ImageRecord, Status
from .plugins import PluginHost
from .redaction import redact_parameters, redact_url
from .store import ImageStore
from .tdl import Template, parse_template, redact_template


class ImageService:
    def __init__(self, config: Config, store: ImageStore, plugins: PluginHost,
                 engine: BuildEngine):
        self.config = config
        self.store = store
        self.plugins = plugins
        self.engine = engine

    # -- validation -----------------------------------------------------------------------------
    def _template(self, text: str | None) -> Template:
        if not text:
            raise InvalidRequest("missing parameter 'template' (TDL XML text)")
        template = parse_template(text, require_rootpw=self.config.tdl_require_root_pw,
                                  max_bytes=self.config.max_template_bytes)
        self.plugins.resolve_os(template.os)
        return template

    @staticmethod
    def _callbacks(parameters: dict[str, Any]) -> list[str]:
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
        return [str(u) for u in callbacks]

    def _usable_parent(self, image_id: str, kind: ImageKind) -> ImageRecord:
        parent = self.store.get(image_id, kind)
        if parent.status in (Status.FAILED, Status.DELETED, Status.DELETING,
                             Status.DELETEFAILED):
            detail = f": {parent.status_detail.error}" if parent.status_detail.error else ""
            raise Conflict(f"{kind.value} {image_id} is {parent.status.value}{detail}; "
                           "build from another image")
        return parent

    # -- creation -------------------------------------------------------------------------------
    def _create(self, kind: ImageKind, template_text: str | None, parameters: dict[str, Any],
                **links: str | None) -> tuple[ImageRecord, JobSecrets]:
        secrets = JobSecrets(template=template_text, callbacks=self._callbacks(parameters))
        record = self.store.create(
            kind,
            redacted_template=redact_template(template_text) if template_text else None,
            parameters=redact_parameters(parameters),
            secrets={"template": template_text, "callbacks": secrets.callbacks},
            **links,
        )
        return record, secrets

    def _submit(self, kind: ImageKind, template_text: str | None, parameters: dict[str, Any],
                **links: str | None) -> ImageRecord:
        record, secrets = self._create(kind, template_text, parameters, **links)
        self.engine.submit(record, secrets)
        return record

    def create_base(self, template_text: str | None, parameters: dict[str, Any]) -> ImageRecord:
        self._template(template_text)
        return self._submit(ImageKind.BASE, template_text, parameters)

    def create_target(self, target: str | None, parameters: dict[str, Any], *,
                      base_image_id: str | None = None, template_text: str | None = None,
                      ) -> ImageRecord:
        return self._target(target, parameters, base_image_id, template_text)[0]

    def _target(self, target: str | None, parameters: dict[str, Any],
                base_image_id: str | None, template_text: str | None,
                ) -> tuple[ImageRecord, str | None]:
        """Create a target image (and its base first when given a template); return it with
        the template it is built from."""
        _, canonical = self.plugins.resolve_cloud(target)
        self._callbacks(parameters)  # before the cascade creates any record
        if base_image_id and template_text:
            raise InvalidRequest("give either a base image id or a template, not both")
        if base_image_id:
            self._usable_parent(base_image_id, ImageKind.BASE)
            template_text = self.store.secrets(base_image_id).get("template")
        else:
            self._template(template_text)
            base_image_id = self._submit(ImageKind.BASE, template_text, parameters).id
        record = self._submit(ImageKind.TARGET, template_text, parameters,
                              base_image_id=base_image_id, target=canonical)
        return record, template_text

    def create_provider(self, target: str | None, provider: str | dict[str, Any] | None,
                        credentials: dict[str, Any] | None, parameters: dict[str, Any], *,
                        target_image_id: str | None = None, base_image_id: str | None = None,
                        template_text: str | None = None) -> ImageRecord:
        missing = [name for name, value in (("provider", provider), ("credentials", credentials))
                   if not value]
        if missing:
            raise InvalidRequest(f"missing parameter(s) {', '.join(missing)}: a provider image "
                                 "needs the cloud provider and its credentials")
        if target_image_id:
            target_image = self._usable_parent(target_image_id, ImageKind.TARGET)
            self.plugins.resolve_cloud(target_image.target)  # its cloud plugin is still here
            if target and self.plugins.resolve_cloud(target)[1] != target_image.target:
                raise InvalidRequest(f"target image {target_image_id} was built for "
                                     f"{target_image.target!r}, not {target!r}")
            template_text = self.store.secrets(target_image_id).get("template")
        else:
            if not target:
                raise InvalidRequest("missing parameter 'target' (a cloud target such as 'ec2')")
            target_image, template_text = self._target(target, parameters, base_image_id,
                                                       template_text)
        provider_text = json.dumps(provider) if isinstance(provider, dict) else provider
        record, secrets = self._create(ImageKind.PROVIDER, template_text, parameters,
                                       target_image_id=target_image.id,
                                       target=target_image.target, provider=provider_text)
        secrets.provider = provider
        secrets.credentials = credentials
        self.engine.submit(record, secrets)
        return record

    # -- reading and deleting -------------------------------------------------------------------
    def get(self, kind: ImageKind, image_id: str, **parents: str) -> ImageRecord:
        """One image; `parents` (e.g. ``base_image_id=…``) must match for nested URLs."""
        record = self.store.get(image_id, kind)
        for column, value in parents.items():
            if getattr(record, column) != value:
                raise NotFound(f"{kind.value} {image_id} does not belong to {value}")
        return record

    def children(self, record: ImageRecord) -> list[ImageRecord] | None:
        if record.kind is ImageKind.BASE:
            return self.store.list(ImageKind.TARGET, base_image_id=record.id)
        if record.kind is ImageKind.TARGET:
            return self.store.list(ImageKind.PROVIDER, target_image_id=record.id)
        return None

    def delete(self, record: ImageRecord, request_provider: str | dict[str, Any] | None = None,
               credentials: dict[str, Any] | None = None) -> None:
        if record.status is Status.DELETED:
            return
        if record.kind is ImageKind.PROVIDER:
            self.engine.delete_provider(
                record, JobSecrets(provider=request_provider, credentials=credentials))
        else:
            self.engine.delete_local(record)
