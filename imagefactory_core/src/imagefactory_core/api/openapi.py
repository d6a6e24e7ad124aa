"""The OpenAPI 3.1 description of the REST API, served at /imagefactory/openapi.json.

Written out by hand (it is documentation); `tests/test_openapi.py` checks that every route
and method the app serves is described here and that nothing described here is missing. The
request's ``parameters`` are the one part generated: the declarations of the loaded plugins.
"""

from __future__ import annotations

from typing import Any

import falcon

from .. import __version__
from ..parameters import CORE, CORE_PARAMETERS, Parameter
from ..plugins import PluginHost

JSON = "application/json"
ERROR = {"description": "Error",
         "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"$ref": f"#/components/responses/E{code}"} for code in codes}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


SINGULAR = {"base_images": "base_image", "target_images": "target_image",
            "provider_images": "provider_image"}


def _scope(parents: list[str]) -> str:
    """Keeps operationIds unique across the nested forms of one collection."""
    return "".join(f"_in_{p.removesuffix('_id')}" for p in parents)


def _collection(collection: str, params: list[str]) -> dict[str, Any]:
    singular = SINGULAR[collection]
    scope = _scope(params)
    body = {
        JSON: {"schema": {"type": "object", "required": [singular],
                          "properties": {singular: _ref("ImageRequest")}}},
        "application/xml": {"schema": {"type": "string"},
                            "example": f"<{singular}><target>ec2</target></{singular}>"},
        "application/x-www-form-urlencoded": {"schema": _ref("ImageRequest")},
        "multipart/form-data": {"schema": _ref("ImageRequest")},
    }
    return {
        "parameters": [_param(p) for p in params],
        "get": {"summary": f"List {collection}", "operationId": f"list_{collection}{scope}",
                "responses": {"200": _json({"type": "object"}, "The collection"),
                              **_errors(404)}},
        "post": {"summary": f"Create a {singular} (202: built asynchronously)",
                 "operationId": f"create_{singular}{scope}",
                 "security": [{"oauth1": []}],
                 "requestBody": {"required": True, "content": body},
                 "responses": {"202": _json(_ref("ImageEnvelope"), "The new image"),
                               **_errors(400, 401, 404, 409, 413, 415)}},
    }


def _item(collection: str, params: list[str]) -> dict[str, Any]:
    singular = SINGULAR[collection]
    scope = _scope(params[:-1])
    delete: dict[str, Any] = {"summary": f"Delete a {singular} (cancels a build in progress)",
                              "operationId": f"delete_{singular}{scope}",
                              "security": [{"oauth1": []}],
                              "responses": {"204": {"description": "Deleted or deleting"},
                                            **_errors(400, 401, 404, 409)}}
    if collection == "provider_images":
        delete["description"] = ("With credentials (and provider, target) the image is "
                                 "deleted on its cloud too; without them it is forgotten and "
                                 "stays on the cloud.")
    delete["requestBody"] = {"required": False, "content": {
        JSON: {"schema": {"type": "object", "properties": {singular: _ref("DeleteRequest")}}}}}
    return {
        "parameters": [_param(p) for p in params],
        "get": {"summary": f"Show a {singular}", "operationId": f"get_{singular}{scope}",
                "responses": {"200": _json(_ref("ImageEnvelope"), "The image"),
                              **_errors(404)}},
        "delete": delete,
    }


# Image bodies and build logs need a signed request whenever OAuth is on, even where status
# reads are open (protect_reads false): the seed service never served them.
SIGNED_READ = [{"oauth1": []}]


def _log(params: list[str]) -> dict[str, Any]:
    return {"parameters": [_param(p) for p in params],
            "get": {"summary": "The build log (text); ?follow=true streams it until the image "
                               "settles (503 with Retry-After when too many follow already)",
                    "security": SIGNED_READ,
                    "parameters": [{"name": "follow", "in": "query",
                                    "schema": {"type": "boolean"}}],
                    "responses": {"200": {"description": "Log text",
                                          "content": {"text/plain": {}}},
                                  **_errors(400, 401, 404, 503)}}}


def _raw(params: list[str]) -> dict[str, Any]:
    responses = {"200": {"description": "The body", "content": {"application/octet-stream": {}}},
                 "206": {"description": "Part of the body"},
                 **_errors(400, 401, 404, 409, 416)}
    get = {"summary": "Download the image body (Range supported)", "security": SIGNED_READ,
           "responses": {**responses, "307": {
               "description": "With object storage and raw_image_redirect: the body is at a "
                              "pre-signed URL (Location), valid for 300 s, Range supported"}}}
    return {"parameters": [_param(p) for p in params], "get": get,
            "head": {**get, "summary": "Size and type of the image body",
                     "responses": responses}}


def _image_paths() -> dict[str, Any]:
    forms = [
        ("/imagefactory/base_images", "base_images", [], "base_id"),
        ("/imagefactory/target_images", "target_images", [], "target_id"),
        ("/imagefactory/provider_images", "provider_images", [], "provider_id"),
        ("/imagefactory/base_images/{base_id}/target_images", "target_images", ["base_id"],
         "target_id"),
        ("/imagefactory/target_images/{target_id}/target_images", "target_images",
         ["target_id"], "derived_id"),
        ("/imagefactory/target_images/{target_id}/provider_images", "provider_images",
         ["target_id"], "provider_id"),
        ("/imagefactory/base_images/{base_id}/target_images/{target_id}/provider_images",
         "provider_images", ["base_id", "target_id"], "provider_id"),
    ]
    paths: dict[str, Any] = {}
    for path, collection, params, own in forms:
        item = f"{path}/{{{own}}}"
        paths[path] = _collection(collection, params)
        paths[item] = _item(collection, [*params, own])
        paths[f"{item}/log"] = _log([*params, own])
        if collection != "provider_images":
            paths[f"{item}/raw_image"] = _raw([*params, own])
    return paths


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["title", "description"],
              "properties": {"title": {"type": "string"}, "description": {"type": "string"}}},
    "ImageRequest": {
        "type": "object",
        "properties": {
            "template": {"type": "string", "description": "TDL XML text"},
            "target": {"type": "string", "examples": ["ec2", "openstack-kvm"]},
            "provider": {"oneOf": [{"type": "string"}, {"type": "object"}]},
            "credentials": {"oneOf": [{"type": "string", "description": "provider_credentials XML"},
                                      {"type": "object"}]},
            "parameters": {"type": "object"},
            "base_image_id": {"type": "string"},
            "target_image_id": {"type": "string", "description": (
                "a provider image's target image; or the target image a target image is made "
                "from, for targets made from other targets' images (ova)")},
        },
    },
    "DeleteRequest": {
        "type": "object",
        "description": "provider images only: target, provider, credentials",
        "properties": {
            "target": {"type": "string"},
            "provider": {"oneOf": [{"type": "string"}, {"type": "object"}]},
            "credentials": {"oneOf": [{"type": "string", "description": "provider_credentials XML"},
                                      {"type": "object"}]},
            "parameters": {"type": "object", "properties": {
                "callbacks": {"type": "array", "items": {"type": "string", "format": "uri"}}},
                "description": "only callbacks: they hear the deletion"},
        },
    },
    "Image": {
        "type": "object",
        "required": ["_type", "id", "href", "status", "status_detail", "percent_complete"],
        "properties": {
            "_type": {"enum": ["BaseImage", "TargetImage", "ProviderImage"]},
            "id": {"type": "string", "format": "uuid"},
            "href": {"type": "string", "format": "uri"},
            "status": {"enum": ["NEW", "PENDING", "BUILDING", "COMPLETE", "FAILED", "DELETING",
                                "DELETED", "DELETEFAILED"]},
            "status_detail": {"type": "object", "properties": {
                "activity": {"type": "string"}, "error": {"type": ["string", "null"]}}},
            "percent_complete": {"type": "integer", "minimum": 0, "maximum": 100},
            "icicle": {"type": ["string", "null"]},
            "parameters": {"type": "object"},
            "properties": {"type": "object"},
            "template": {"type": ["string", "null"], "description": "TDL, rootpw redacted"},
            "target": {"type": "string"},
            "base_image_id": {"type": "string"},
            "target_image_id": {"type": "string", "description": (
                "provider images: the target image pushed; target images made from another "
                "target image (ova): that image")},
            "provider": {},
            "identifier_on_provider": {"type": ["string", "null"]},
            "provider_account_identifier": {"type": ["string", "null"]},
            "log": {"type": "string", "format": "uri"},
            "raw_image": {"type": "string", "format": "uri"},
        },
    },
    "ImageEnvelope": {"type": "object", "minProperties": 1, "maxProperties": 1,
                      "additionalProperties": _ref("Image")},
    "Plugin": {"type": "object", "properties": {
        "_type": {"const": "plugin"}, "id": {"type": "string"}, "href": {"type": "string"},
        "type": {"enum": ["os", "cloud", None]}, "description": {"type": ["string", "null"]},
        "version": {"type": ["string", "null"]}, "license": {"type": ["string", "null"]},
        "maintainer": {"type": "object"}, "targets": {"type": "array"},
        "api_version": {"type": ["string", "null"]},
        "status": {"enum": ["loaded", "broken", "disabled", "incompatible"]},
        "error": {"type": ["string", "null"]},
        "parameters": {"type": "array", "description": "declared parameters (one plugin)"}}},
}


def parameters_schema(plugins: PluginHost) -> dict[str, Any]:
    """The request's ``parameters``: every parameter the core and the loaded plugins declare.
    Which of them a request may name depends on the plugins it calls (``x-plugins``)."""
    owners: dict[str, list[tuple[str, Parameter]]] = {}
    for owner, declared in [(CORE, CORE_PARAMETERS),
                            *((info.id, info.parameters) for info in plugins.loaded())]:
        for parameter in declared:
            owners.setdefault(parameter.name, []).append((owner, parameter))
    properties = {}
    for name, declared_by in sorted(owners.items()):
        first = declared_by[0][1]
        properties[name] = {**first.schema(), "x-plugins": [owner for owner, _ in declared_by],
                            "x-operator-only": first.operator_only}
    return {"type": "object", "additionalProperties": False, "properties": properties}


def document(plugins: PluginHost) -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/imagefactory": {"get": {"summary": "Service name and versions",
                                  "responses": {"200": _json({"type": "object"}, "Versions")}}},
        "/imagefactory/openapi.json": {"get": {"summary": "This document",
                                               "responses": {"200": _json({"type": "object"},
                                                                          "OpenAPI 3.1")}}},
        "/imagefactory/plugins": {"get": {"summary": "Installed plugins (with broken ones)",
                                          "responses": {"200": _json(
                                              {"type": "object", "properties": {"plugins": {
                                                  "type": "array", "items": _ref("Plugin")}}},
                                              "Plugins")}}},
        "/imagefactory/plugins/{plugin_id}": {
            "parameters": [_param("plugin_id")],
            "get": {"summary": "One plugin", "responses": {"200": _json(_ref("Plugin"), "Plugin"),
                                                           **_errors(404)}}},
        **_image_paths(),
    }
    codes = (400, 401, 404, 409, 413, 415, 416, 503)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Image Factory REST API", "version": "2.0",
                 "x-implementation-version": __version__},
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, "ImageRequest": {
                **SCHEMAS["ImageRequest"],
                "properties": {**SCHEMAS["ImageRequest"]["properties"],
                               "parameters": parameters_schema(plugins)}}},
            "responses": {f"E{c}": {**ERROR, "description": f"HTTP {c}"} for c in codes},
            "securitySchemes": {"oauth1": {
                "type": "http", "scheme": "OAuth",
                "description": "Two-legged OAuth 1.0a (HMAC-SHA1 or HMAC-SHA256). Writes, image "
                               "bodies and build logs need it whenever OAuth is on; other reads "
                               "too when the operator sets protect_reads."}},
        },
    }


class OpenAPIDocument:
    def __init__(self, plugins: PluginHost):
        self.plugins = plugins

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = document(self.plugins)
