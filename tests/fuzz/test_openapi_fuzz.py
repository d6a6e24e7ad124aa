"""Schemathesis against the OpenAPI document a real `imagefactory serve` serves, every request
signed with two-legged OAuth 1.0a (HMAC-SHA1) as a client would sign it.

Each operation is fuzzed with schema-valid requests, and, where it takes a body or a query,
with schema-invalid ones; operations on one image are fuzzed once more with the ids of real
images, so the fuzzer reaches past the 404. The server runs the test-only plugins, so nothing
real is built. Every answer must be no 5xx, come within `REQUEST_TIMEOUT`, conform to the
document (status code, content type, headers, body schema), refuse schema-invalid data with a
4xx, and, if an error, be JSON a person can act on.

``positive_data_acceptance`` is left out on purpose: the document can only say that a template
is a string and a target a name, so most schema-valid requests are rightly refused (400: not
TDL; 400: no such target). The TDL parser and the body parsers have their own fuzz tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from imagefactory_core.api.openapi import document
from imagefactory_core.plugins import load_plugins
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.plugins import fake_cloud, fake_os
from tests.rest.conftest import SEED_CREDENTIALS, fake_tdl
from tests.server.conftest import ServerProcess

from .conftest import HANG_SECONDS, bounded

pytestmark = [pytest.mark.slow, pytest.mark.timeout(HANG_SECONDS)]

REQUEST_TIMEOUT = 30.0
"""Seconds one request may take: far beyond any answer, so only a hang trips it."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, negative_data_rejection,
          ignored_auth]
EXAMPLES = 40

# The operations are listed from the document the code generates, so each is its own test;
# the test then fuzzes it as the *served* document describes it (a missing one is a failure).
METHODS = ("get", "head", "post", "put", "patch", "delete")
_PATHS = document(load_plugins(discover=False, extra=[("FakeOS", fake_os),
                                                      ("FakeCloud", fake_cloud)]))["paths"]
OPERATIONS = [(path, method) for path, item in _PATHS.items() for method in item
              if method in METHODS]


def _negatable(path: str, method: str) -> bool:
    """Whether a schema-invalid request exists: a body, or a query parameter with a type (path
    parameters are any string, so none is invalid)."""
    operation = _PATHS[path][method]
    return "requestBody" in operation or bool(operation.get("parameters"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    started = ServerProcess(tmp_path_factory.mktemp("openapi-fuzz"))
    try:
        yield started.start()
        # SIGTERM cancels any build a fuzzed request started (and its commands) before exit
        started.signal(15, timeout=60)
    finally:
        started.cleanup()


@pytest.fixture(scope="module")
def served(server: ServerProcess) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=REQUEST_TIMEOUT)


@pytest.fixture(scope="module")
def image_ids(server: ServerProcess) -> dict[str, str]:
    """Path parameters naming a real chain: a complete base, a target of it, a provider image
    of that target."""
    provider = server.post("/provider_images", {"provider_image": {
        "template": fake_tdl("fuzzed"), "target": "fakecloud", "provider": "p1",
        "credentials": SEED_CREDENTIALS}})
    provider = server.wait_for(f"/provider_images/{provider['id']}")
    assert provider["status"] == "COMPLETE", provider["status_detail"]
    target = server.get(f"/target_images/{provider['target_image_id']}")
    return {"provider_id": provider["id"], "target_id": target["id"],
            "base_id": target["base_image_id"]}


def fuzz(server: ServerProcess, served: Any, path: str, method: str, mode: GenerationMode,
         path_parameters: dict[str, str] | None = None) -> None:
    operation = served[path][method]
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @bounded(EXAMPLES)
    @given(case=strategy)
    def one_request(case: schemathesis.Case) -> None:
        # `auth` given explicitly lets ignored_auth resend the request unsigned and wrongly
        # signed, and expect a 401 wherever the document asks for a signature
        answer = case.call_and_validate(session=server.session, auth=server.session.auth,
                                        timeout=REQUEST_TIMEOUT, checks=CHECKS)
        if answer.status_code >= 400 and method != "head":
            body = answer.json()
            assert body["title"].strip() and body["description"].strip(), body

    one_request()


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_schema_valid_requests(server, served, path, method):
    fuzz(server, served, path, method, GenerationMode.POSITIVE)


@pytest.mark.parametrize(("path", "method"),
                         [operation for operation in OPERATIONS if _negatable(*operation)])
def test_schema_invalid_requests(server, served, path, method):
    fuzz(server, served, path, method, GenerationMode.NEGATIVE)


@pytest.mark.parametrize(("path", "method"),
                         [operation for operation in OPERATIONS if "{" in operation[0]])
def test_requests_on_real_images(server, served, image_ids, path, method):
    named = {name: image_ids[name] for name in ("base_id", "target_id", "provider_id")
             if f"{{{name}}}" in path}
    fuzz(server, served, path, method, GenerationMode.POSITIVE, path_parameters=named)
