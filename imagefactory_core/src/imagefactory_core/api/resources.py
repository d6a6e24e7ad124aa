"""Thin Falcon resources: parse the request, call the service, shape the answer.

Nested URLs name parent ids with the same field names everywhere (`base_id`, `target_id`,
`provider_id`), so one resource class serves the top-level and the nested forms; a target image
made from another target image (``/target_images/{target_id}/target_images/{derived_id}``) is
named by `derived_id`.
"""

from __future__ import annotations

from typing import Any

import falcon

from .. import __version__
from .. import representation as rep
from ..config import Config
from ..errors import InvalidRequest
from ..model import ImageKind, ImageRecord, Status
from ..plugins import PluginHost
from ..service import ImageService, Request
from ..storage import body_key, log_key
from .logs import Followers
from .media import read_image_request

PARENT_COLUMN = {"base_id": "base_image_id", "target_id": "target_image_id"}
REDIRECT_SECONDS = 300  # how long a pre-signed raw_image URL may start a download


def base_url(req: falcon.Request, config: Config) -> str:
    if config.public_url:
        return config.public_url.rstrip("/")
    if config.trust_proxy_headers:
        return f"{req.forwarded_scheme}://{req.forwarded_host}"
    return f"{req.scheme}://{req.netloc}"


def _collection_url(req: falcon.Request, config: Config) -> str:
    """The collection URL as the client used it (nested forms keep their nesting)."""
    path = req.path.rstrip("/")
    return base_url(req, config) + path


class Root:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"name": "imagefactory", "version": __version__, "api_version": "2.0"}


class ImageCollection:
    def __init__(self, service: ImageService, config: Config, kind: ImageKind):
        self.service = service
        self.config = config
        self.kind = kind

    def _parents(self, ids: dict[str, str]) -> dict[str, str]:
        """Parent links named in the URL, checked to exist and to belong together."""
        links = {PARENT_COLUMN[k]: v for k, v in ids.items() if k in PARENT_COLUMN}
        if "target_image_id" in links:
            owner = ({"base_image_id": links["base_image_id"]}
                     if "base_image_id" in links else {})
            self.service.get(ImageKind.TARGET, links["target_image_id"], **owner)
        elif "base_image_id" in links:
            self.service.get(ImageKind.BASE, links["base_image_id"])
        return links

    def on_get(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        links = self._parents(ids)
        if self.kind is ImageKind.PROVIDER:
            links.pop("base_image_id", None)
        refs = self.service.store.refs(self.kind, **links)
        prefix = _collection_url(req, self.config)
        resp.media = {self.kind.collection: [rep.summary("", r, prefix) for r in refs]}

    def on_post(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        links = self._parents(ids)
        body = read_image_request(req, self.kind.singular)
        request = Request(body.parameters, getattr(req.context, "oauth_client", None))
        base_id = links.get("base_image_id") or body.base_image_id
        if self.kind is ImageKind.BASE:
            record = self.service.create_base(body.template, request)
        elif self.kind is ImageKind.TARGET:
            record = self.service.create_target(
                body.target, request, base_image_id=base_id, template_text=body.template,
                target_image_id=links.get("target_image_id") or body.target_image_id)
        else:
            record = self.service.create_provider(
                body.target, body.provider, body.credentials, request,
                target_image_id=links.get("target_image_id") or body.target_image_id,
                base_image_id=None if links.get("target_image_id") else base_id,
                template_text=body.template)
        prefix = _collection_url(req, self.config)
        resp.status = falcon.HTTP_202
        resp.location = f"{prefix}/{record.id}"
        resp.media = rep.full("", record, prefix)


class ImageItem:
    def __init__(self, service: ImageService, config: Config, kind: ImageKind, own: str):
        self.service = service
        self.config = config
        self.kind = kind
        self.own = own  # the URL field naming the image itself

    def _parents(self, ids: dict[str, str]) -> dict[str, str]:
        """The parent links the URL names that the image must have (checked further up)."""
        parents = {PARENT_COLUMN[k]: v for k, v in ids.items()
                   if k in PARENT_COLUMN and k != self.own}
        if self.kind is ImageKind.PROVIDER and "base_image_id" in parents:
            base_id = parents.pop("base_image_id")
            self.service.get(ImageKind.TARGET, parents["target_image_id"],
                             base_image_id=base_id)
        return parents

    def record(self, ids: dict[str, str]) -> ImageRecord:
        return self.service.get(self.kind, ids[self.own], **self._parents(ids))

    def on_get(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        record, children = self.service.get_with_children(
            self.kind, ids[self.own], **self._parents(ids))
        prefix = _collection_url(req, self.config).rsplit("/", 1)[0]
        resp.media = rep.full("", record, prefix, children)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        """The body (or query) may name the cloud to delete a provider image on, and
        ``parameters.callbacks``; without a cloud, a provider image is forgotten and stays
        on it (the service says so)."""
        record = self.record(ids)
        body = read_image_request(req, self.kind.singular, body_required=False)
        creating = [name for name in ("template", "base_image_id", "target_image_id")
                    if getattr(body, name)]
        if creating:
            raise InvalidRequest(f"{', '.join(creating)}: a DELETE takes only target, "
                                 "provider, credentials and parameters")
        request = Request(body.parameters, getattr(req.context, "oauth_client", None))
        self.service.delete(record, body.provider, body.credentials, target=body.target,
                            request=request)
        resp.status = falcon.HTTP_204


class RawImage:
    """The image body, with HTTP Range support for resumable downloads: read from storage
    through the API, or (``raw_image_redirect``, object storage only) a GET answered by a
    307 to a pre-signed storage URL that the client follows, Range and all.

    Signed whenever OAuth is on: a body holds what its template put in it (files, the root
    password's hash), which the seed's open status reads never served.
    """

    always_signed = True

    def __init__(self, item: ImageItem):
        self.item = item

    def on_get(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        record = self.item.record(ids)
        storage = self.item.service.store.storage
        key = body_key(record.id)
        size = storage.size(key) if record.status is Status.COMPLETE else None
        if size is None:
            raise falcon.HTTPConflict(
                title="Image not available",
                description=f"image {record.id} is {record.status.value}; its body can be "
                            "downloaded once it is COMPLETE")
        fmt = record.properties.get("disk_format", "raw")
        if req.method == "GET" and self.item.config.raw_image_redirect:
            url = storage.download_url(key, f"{record.id}.{fmt}", REDIRECT_SECONDS)
            if url is not None:
                raise falcon.HTTPTemporaryRedirect(url)
        start, end = 0, size - 1
        if req.range is not None and req.range_unit == "bytes":  # other units are ignored
            first, last = req.range
            if first < 0:
                start = max(size + first, 0)
            else:
                start, end = first, (size - 1 if last == -1 else min(last, size - 1))
            if start >= size or start > end:
                raise falcon.HTTPRangeNotSatisfiable(
                    size, description=f"the image body is {size} bytes; ask for a range "
                                      "that starts inside it")
            resp.status = falcon.HTTP_206
            resp.content_range = (start, end, size)
        resp.content_type = "application/octet-stream"
        resp.downloadable_as = f"{record.id}.{fmt}"
        resp.accept_ranges = "bytes"
        resp.content_length = end - start + 1
        resp.stream = storage.read(key, start, end - start + 1)

    on_head = on_get


class BuildLog:
    """The image's build log as text, streamed from storage; ``?follow=true`` streams it until
    the image settles, within the bounds of `Followers`. With object storage, a running
    job's lines appear as they are uploaded (``log_upload_seconds``).

    Signed whenever OAuth is on: commands and their output are logged, which the seed's open
    status reads never served.
    """

    always_signed = True

    def __init__(self, item: ImageItem, followers: Followers):
        self.item = item
        self.followers = followers

    def on_get(self, req: falcon.Request, resp: falcon.Response, **ids: str) -> None:
        record = self.item.record(ids)
        store = self.item.service.store
        key = log_key(record.id)
        resp.content_type = falcon.MEDIA_TEXT
        if req.get_param_as_bool("follow", default=False):
            resp.stream = self.followers.follow(store.storage, key,
                                                lambda: _settled(store.get(record.id)))
            return
        size = store.storage.size(key) or 0
        resp.content_length = size
        resp.stream = store.storage.read(key, 0, size) if size else None


def _settled(record: ImageRecord) -> bool:
    return not (record.status.active or record.status is Status.DELETING)


class Plugins:
    def __init__(self, plugins: PluginHost, config: Config):
        self.plugins = plugins
        self.config = config

    def _shown(self, req: falcon.Request, info: Any, detailed: bool = False) -> dict[str, Any]:
        return {**info.metadata(detailed),
                "href": f"{base_url(req, self.config)}/imagefactory/plugins/{info.id}"}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"plugins": [self._shown(req, i) for i in self.plugins.infos.values()]}

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, plugin_id: str) -> None:
        resp.media = self._shown(req, self.plugins.get(plugin_id), detailed=True)
