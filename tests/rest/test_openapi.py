"""The OpenAPI document at /imagefactory/openapi.json is valid OpenAPI 3.1 and matches the code:
every route of `route_table` with every responder its resource implements is documented, every
documented operation is served, and what it answers fits what the document says."""

from __future__ import annotations

import re
from typing import Any

import falcon
import falcon.testing
import pytest
from imagefactory_core.api.app import PREFIX, route_table
from imagefactory_core.plugins import PluginHost, load_plugins
from imagefactory_core.testing import wait_for_status
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.plugins import fake_cloud, fake_os, fake_package

from .conftest import SEED_CREDENTIALS, fake_tdl

METHODS = ("get", "head", "post", "put", "patch", "delete", "options")
SINGULAR = {"base_images": "base_image", "target_images": "target_image",
            "provider_images": "provider_image"}


@pytest.fixture
def imagefactory_plugins() -> PluginHost:
    """The REST tests' plugins, and a target made from target images to call its routes."""
    return load_plugins(discover=False, extra=[("FakeOS", fake_os), ("FakeCloud", fake_cloud),
                                               ("FakePackage", fake_package)])


@pytest.fixture
def document(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    result = client.simulate_get("/imagefactory/openapi.json")
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("application/json")
    return result.json


def implemented(resource: object, suffix: str | None) -> set[str]:
    """The HTTP methods `resource` has responders for (``on_get``, ``on_get_<suffix>`` …)."""
    tail = f"_{suffix}" if suffix else ""
    return {m for m in METHODS if callable(getattr(resource, f"on_{m}{tail}", None))}


def served_routes(app: falcon.App) -> dict[str, set[str]]:
    return {PREFIX + path: implemented(resource, suffix)
            for path, resource, suffix in route_table(app.services)}


def documented(document: dict[str, Any]) -> dict[str, set[str]]:
    return {path: {m for m in item if m in METHODS} for path, item in document["paths"].items()}


def test_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(document).validate()
    assert document["info"]["version"] == "2.0"


def test_every_route_and_responder_is_documented(imagefactory_app, document):
    served = served_routes(imagefactory_app)
    assert len(served) == 4 + 7 * 3 + 4  # root, openapi, plugins (2); 7 image forms
    in_document = documented(document)
    missing = sorted(set(served) - set(in_document))
    assert not missing, f"routes missing from openapi.json: {missing}"
    for path, methods in served.items():
        assert methods, f"route {path} has no responder"
        absent = methods - in_document[path]
        assert not absent, f"{path}: {sorted(absent)} served but not documented"


def test_nothing_is_documented_that_the_code_does_not_serve(imagefactory_app, document):
    served = served_routes(imagefactory_app)
    unserved = sorted(set(documented(document)) - set(served))
    assert not unserved, f"documented but not routed: {unserved}"
    for path, methods in documented(document).items():
        extra = methods - served[path]
        assert not extra, f"{path}: {sorted(extra)} documented but answered 405"


def test_path_parameters_match_the_route_templates(document):
    for path, item in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method in documented(document)[path]:
            params = [*item.get("parameters", []), *item[method].get("parameters", [])]
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == names, (path, method, in_path)
            for param in params:
                if param["in"] == "path":
                    assert param["required"] is True


def test_router_resolves_every_documented_operation(imagefactory_app, document):
    """Falcon's own router finds a resource and a real responder for each documented path and
    method (neither a 404 nor the default 405 responder)."""
    router = imagefactory_app._router
    for path, methods in documented(document).items():
        concrete = re.sub(r"{(\w+)}", r"x-\1", path)
        found = router.find(concrete)
        assert found is not None, f"{path}: no route"
        resource, method_map, params, template = found
        assert template == path
        assert set(params) == set(re.findall(r"{(\w+)}", path))
        for method in methods:
            responder = method_map[method.upper()]
            assert getattr(responder, "__self__", None) is resource, \
                f"{method.upper()} {path} is not served by the resource (405)"


# -- every documented operation, called for real -------------------------------------------------
def _schema_check(document: dict[str, Any], schema: dict[str, Any], instance: Any,
                  where: str) -> None:
    rooted = {**schema, "components": document["components"]}
    errors = sorted(OAS31Validator(rooted).iter_errors(instance), key=str)
    assert not errors, f"{where}: {errors[0].message}"


def _response_spec(document: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        spec = document["components"]["responses"][name]
    return spec


def check_answer(document: dict[str, Any], path: str, method: str,
                 result: falcon.testing.Result) -> None:
    where = f"{method.upper()} {path}"
    operation = document["paths"][path][method]
    assert str(result.status_code) in operation["responses"], \
        f"{where}: {result.status_code} is not documented: {result.text[:300]}"
    assert result.status_code < 400, f"{where}: {result.status_code} {result.text[:300]}"
    spec = _response_spec(document, operation["responses"][str(result.status_code)])
    content = spec.get("content", {})
    if content and method != "head":
        media = result.headers["content-type"].split(";")[0]
        assert media in content, f"{where}: answered {media}, documented {sorted(content)}"
        schema = content[media].get("schema")
        if schema is not None and media == "application/json":
            _schema_check(document, schema, result.json, where)


class Chain:
    """Builds complete images to fill the documented paths' parameters with real ids."""

    def __init__(self, client: falcon.testing.TestClient):
        self.client = client

    def _post(self, path: str, body: dict[str, Any]) -> str:
        result = self.client.simulate_post(path, json=body)
        assert result.status_code == 202, result.text
        image = next(iter(result.json.values()))
        collection = path.rsplit("/", 1)[-1]
        done = wait_for_status(self.client, f"/imagefactory/{collection}/{image['id']}")
        assert done["status"] == "COMPLETE", done["status_detail"]
        return str(image["id"])

    def base(self) -> str:
        return self._post("/imagefactory/base_images",
                          {"base_image": {"template": fake_tdl()}})

    def target(self, base_id: str) -> str:
        return self._post(f"/imagefactory/base_images/{base_id}/target_images",
                          {"target_image": {"target": "fakecloud"}})

    def derived(self, target_id: str) -> str:
        return self._post(f"/imagefactory/target_images/{target_id}/target_images",
                          {"target_image": {"target": "fakepackage"}})

    def provider(self, target_id: str) -> str:
        return self._post(f"/imagefactory/target_images/{target_id}/provider_images",
                          {"provider_image": {"provider": "p1",
                                              "credentials": SEED_CREDENTIALS}})

    def ids(self) -> dict[str, str]:
        base_id = self.base()
        target_id = self.target(base_id)
        return {"base_id": base_id, "target_id": target_id,
                "derived_id": self.derived(target_id),
                "provider_id": self.provider(target_id), "plugin_id": "FakeCloud"}


def post_body(path: str) -> dict[str, Any]:
    collection = path.rsplit("/", 1)[-1]
    nested = "{" in path
    body: dict[str, Any] = {} if nested else {"template": fake_tdl()}
    if collection != "base_images" and not nested:
        body["target"] = "fakecloud"
    if collection == "provider_images":
        body.update(provider="p1", credentials=SEED_CREDENTIALS)
    if collection == "target_images" and nested:
        made_from_target = path.endswith("/target_images/{target_id}/target_images")
        body["target"] = "fakepackage" if made_from_target else "fakecloud"
    return {SINGULAR[collection]: body}


def test_every_documented_operation_answers_as_documented(client, document):
    chain = Chain(client)
    ids = chain.ids()
    operations = [(path, method) for path, methods in documented(document).items()
                  for method in sorted(methods)]
    assert len(operations) >= 40
    for path, method in [op for op in operations if op[1] != "delete"]:
        url = path.format(**ids)
        kwargs: dict[str, Any] = {"json": post_body(path)} if method == "post" else {}
        check_answer(document, path, method, client.simulate_request(method.upper(), url,
                                                                     **kwargs))
    for path, method in [op for op in operations if op[1] == "delete"]:
        # a fresh image for each DELETE, so each one deletes something real
        own = path.rsplit("/", 1)[-1].strip("{}")
        fresh = dict(ids)
        if own == "base_id":
            fresh["base_id"] = chain.base()
        elif own == "target_id":
            fresh["target_id"] = chain.target(ids["base_id"])
        elif own == "derived_id":
            fresh["derived_id"] = chain.derived(ids["target_id"])
        else:
            fresh["provider_id"] = chain.provider(ids["target_id"])
        kwargs = {}
        if own == "provider_id":
            kwargs["json"] = {"provider_image": {"provider": "p1", "target": "fakecloud",
                                                 "credentials": SEED_CREDENTIALS}}
        url = path.format(**fresh)
        check_answer(document, path, method, client.simulate_delete(url, **kwargs))
        collection = path.rsplit("/", 2)[-2]
        gone = wait_for_status(client, f"/imagefactory/{collection}/{fresh[own]}")
        assert gone["status"] == "DELETED", (path, gone["status_detail"])


def test_errors_match_the_documented_error_schema(client, document):
    schema = {"$ref": "#/components/schemas/Error"}
    for method, path, status in [
        ("GET", "/imagefactory/base_images/nope", 404),
        ("POST", "/imagefactory/base_images", 400),
        ("GET", "/imagefactory/plugins/nope", 404),
    ]:
        result = client.simulate_request(method, path, json={} if method == "POST" else None)
        assert result.status_code == status
        _schema_check(document, schema, result.json, f"{method} {path}")
        operation = document["paths"][path.replace("nope", "{base_id}")
                                      if "base_images/" in path
                                      else path.replace("nope", "{plugin_id}")][method.lower()]
        assert str(status) in operation["responses"], (method, path, status)
