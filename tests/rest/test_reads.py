"""Who may read what with OAuth on. Status reads stay open as the seed's are (image JSON, lists,
plugins, the OpenAPI document); image bodies and build logs, which the seed never served, need a
signed request whatever their URL's spelling; ``protect_reads`` protects everything. Callback
URLs are shown as scheme, host and port only."""

from __future__ import annotations

import time
from typing import Any

import falcon.testing
import pytest
from imagefactory_core.api.app import create_app
from imagefactory_core.testing import make_config, wait_for_status
from oauthlib.oauth1 import Client

from .conftest import fake_tdl

CLIENTS = {"client1": "our-secret"}
# falcon.testing's default scheme and host: what a client of the test app signs
ORIGIN = "http://falconframework.org"


def signed_headers(method: str, path: str, key: str = "client1",
                   secret: str | None = None) -> dict[str, str]:
    client = Client(key, client_secret=CLIENTS.get(key, "") if secret is None else secret)
    _, headers, _ = client.sign(ORIGIN + path, http_method=method)
    return {"Authorization": headers["Authorization"]}


def signed(client: falcon.testing.TestClient, method: str, path: str,
           **kwargs: Any) -> falcon.testing.Result:
    return client.simulate_request(method, path, headers=signed_headers(method, path), **kwargs)


def settle(client: falcon.testing.TestClient, path: str, timeout: float = 60) -> dict[str, Any]:
    """The image at `path` once it settled, polled with signed requests."""
    deadline = time.monotonic() + timeout
    while True:
        image = dict(next(iter(signed(client, "GET", path).json.values())))
        if image["status"] in ("COMPLETE", "FAILED", "DELETED", "DELETEFAILED"):
            return image
        assert time.monotonic() < deadline, f"{path} still {image['status']}"
        time.sleep(0.05)


@pytest.fixture
def imagefactory_config(tmp_path, request):  # type: ignore[no-untyped-def]
    """OAuth on; a test's indirect parameter adds configuration keys."""
    return make_config(tmp_path, no_oauth=False, clients=CLIENTS,
                       outbound_allow=["127.0.0.1"], **getattr(request, "param", {}))


@pytest.fixture
def images(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A COMPLETE base image and a COMPLETE target image of it: their hrefs' paths."""
    posted = client.simulate_post(
        "/imagefactory/target_images",
        headers=signed_headers("POST", "/imagefactory/target_images"),
        json={"target_image": {"template": fake_tdl("reads"), "target": "fakecloud"}})
    assert posted.status_code == 202, posted.text
    target = posted.json["target_image"]
    base = f"/imagefactory/base_images/{target['base_image_id']}"
    target_path = f"/imagefactory/target_images/{target['id']}"
    for path in (base, target_path):
        assert settle(client, path)["status"] == "COMPLETE"
    return {"base": base, "target": target_path,
            "nested": f"{base}/target_images/{target['id']}"}


OPEN = ("/imagefactory", "/imagefactory/base_images", "/imagefactory/target_images",
        "/imagefactory/provider_images", "/imagefactory/plugins",
        "/imagefactory/plugins/FakeOS", "/imagefactory/openapi.json")


def signed_only_paths(images: dict[str, str]) -> list[str]:
    return [f"{images[which]}/{what}" for which in ("base", "target", "nested")
            for what in ("raw_image", "log")]


def assert_refused(result: falcon.testing.Result, head: bool = False) -> None:
    assert result.status_code == 401, result.text
    assert result.headers["www-authenticate"].startswith("OAuth")
    if not head:  # a HEAD answer has no body
        assert result.json["description"], result.json


def test_status_reads_stay_open_under_oauth(client, images):
    for path in (*OPEN, images["base"], images["target"], images["nested"]):
        assert client.simulate_get(path).status_code == 200, path


def test_bodies_and_logs_need_a_signature_under_oauth(client, images):
    for path in signed_only_paths(images):
        assert_refused(client.simulate_get(path))
        assert_refused(client.simulate_get(path, params={"follow": "true"}))
        answer = signed(client, "GET", path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.content, path
    for which in ("base", "target"):
        assert_refused(client.simulate_head(f"{images[which]}/raw_image"), head=True)
        assert signed(client, "HEAD", f"{images[which]}/raw_image").status_code == 200


def test_no_spelling_of_a_body_or_log_url_dodges_the_signature(client, images):
    """The check is made on the resource routing found, not on the path's text; an unknown id
    is refused too (a 404 would tell who may not read which ids exist)."""
    base = images["base"]
    for path in (f"{base}/raw_image/", f"{base}/raw%5Fimage", f"{base}/%6Cog",
                 "/imagefactory/base_images/unknown-id/raw_image",
                 "/imagefactory/base_images/unknown-id/log"):
        assert_refused(client.simulate_get(path))


def test_a_wrong_signature_on_a_body_is_refused(client, images):
    path = f"{images['base']}/raw_image"
    headers = signed_headers("GET", path, secret="guess")
    assert_refused(client.simulate_get(path, headers=headers))


def test_without_oauth_bodies_and_logs_are_open(tmp_path, imagefactory_plugins):
    app = create_app(make_config(tmp_path), imagefactory_plugins)
    try:
        client = falcon.testing.TestClient(app)
        posted = client.simulate_post("/imagefactory/base_images",
                                      json={"base_image": {"template": fake_tdl()}})
        href = f"/imagefactory/base_images/{posted.json['base_image']['id']}"
        assert wait_for_status(client, href)["status"] == "COMPLETE"
        assert client.simulate_get(f"{href}/raw_image").status_code == 200
        assert client.simulate_get(f"{href}/log").status_code == 200
    finally:
        app.services.engine.shutdown(timeout=30)


@pytest.mark.parametrize("imagefactory_config", [{"protect_reads": True}], indirect=True)
def test_protect_reads_protects_every_read(client, images):
    for path in (*OPEN[1:], images["base"], *signed_only_paths(images)):
        assert_refused(client.simulate_get(path))
        assert signed(client, "GET", path).status_code == 200, path


def test_callback_urls_are_shown_as_scheme_host_and_port(client):
    url = "http://hook:Cb-Pw-31@127.0.0.1:9/t/Path-Token-55?token=Query-Token-66#Frag-77"
    posted = client.simulate_post(
        "/imagefactory/base_images", headers=signed_headers("POST", "/imagefactory/base_images"),
        json={"base_image": {"template": fake_tdl(), "parameters": {"callbacks": [url]}}})
    assert posted.status_code == 202, posted.text
    shown = posted.json["base_image"]["parameters"]["callbacks"]
    assert shown == ["http://*****@127.0.0.1:9/*****"]
    href = f"/imagefactory/base_images/{posted.json['base_image']['id']}"
    settle(client, href)
    seen = [posted.text, client.simulate_get(href).text,
            client.simulate_get("/imagefactory/base_images").text,
            signed(client, "GET", f"{href}/log").text]
    for secret in ("Cb-Pw-31", "Path-Token-55", "Query-Token-66", "Frag-77"):
        assert not any(secret in text for text in seen), secret
