"""The one place where exceptions become HTTP answers. Every error body is JSON
``{"title": …, "description": …}`` with a description a person can act on."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import falcon

from ..errors import Conflict, ImageFactoryError, InvalidRequest, NotFound, TemplateError

log = logging.getLogger(__name__)

_DOMAIN: list[tuple[type[ImageFactoryError], str, str]] = [
    (TemplateError, falcon.HTTP_400, "Invalid template"),
    (InvalidRequest, falcon.HTTP_400, "Bad request"),
    (NotFound, falcon.HTTP_404, "Not found"),
    (Conflict, falcon.HTTP_409, "Conflict"),
]

_DEFAULT_DESCRIPTIONS = {
    404: "There is no resource at this URL. GET /imagefactory/openapi.json lists the routes.",
    405: "This resource does not support that method; see the Allow header.",
    406: "This resource answers application/json only; send Accept: application/json.",
    411: "Send the request body with a Content-Length header.",
    413: "The request body is too large.",
    415: "Use Content-Type application/json, application/xml, "
         "application/x-www-form-urlencoded or multipart/form-data.",
}


def _render(resp: falcon.Response, status: str, title: str, description: str,
            headers: dict[str, str] | None = None) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.media = {"title": title, "description": description}
    for name, value in (headers or {}).items():
        resp.set_header(name, value)


def domain_error(req: falcon.Request, resp: falcon.Response, exc: ImageFactoryError,
                 params: dict[str, Any]) -> None:
    for kind, status, title in _DOMAIN:
        if isinstance(exc, kind):
            _render(resp, status, title, str(exc))
            return
    _render(resp, falcon.HTTP_500, "Internal server error", str(exc))


def http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError,
               params: dict[str, Any]) -> None:
    code = exc.status_code
    description = exc.description or _DEFAULT_DESCRIPTIONS.get(code, str(exc.title))
    _render(resp, exc.status, str(exc.title), description, dict(exc.headers or {}))


def unexpected_error(req: falcon.Request, resp: falcon.Response, exc: Exception,
                     params: dict[str, Any]) -> None:
    if isinstance(exc, falcon.HTTPError):
        http_error(req, resp, exc, params)
        return
    incident = uuid.uuid4().hex[:12]
    log.exception("unexpected error (incident %s) on %s %s", incident, req.method, req.path)
    _render(resp, falcon.HTTP_500, "Internal server error",
            f"The server failed unexpectedly; the operator can find incident {incident} "
            "in the service log.")


def install(app: falcon.App) -> None:
    app.add_error_handler(Exception, unexpected_error)
    app.add_error_handler(falcon.HTTPError, http_error)
    app.add_error_handler(ImageFactoryError, domain_error)
