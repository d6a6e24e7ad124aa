"""Two-legged OAuth 1.0a against a real `imagefactory serve` process, with requests-oauthlib
signing as a client would: over plain HTTP with open reads, and over TLS (the self-signed
certificate the server generates, trusted as the CA) with protected reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1

from tests.rest.conftest import SEED_CREDENTIALS, fake_tdl

from .conftest import CLIENTS, ServerProcess, sign, wait_until

pytestmark = pytest.mark.slow

BODY = {"base_image": {"template": fake_tdl("oauth")}}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("plain")
    server = ServerProcess(root)
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("tls")
    server = ServerProcess(root, no_ssl=False, protect_reads=True)
    try:
        yield server.start()
    finally:
        server.cleanup()


def assert_401(answer: requests.Response) -> dict[str, Any]:
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"].startswith("OAuth"), answer.headers
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert body["title"].strip() and body["description"].strip(), body
    return dict(body)


def image_ids(server: ServerProcess, collection: str = "base_images") -> set[str]:
    listed = server.request("GET", f"/{collection}")
    assert listed.status_code == 200, listed.text
    return {next(iter(e.values()))["id"] for e in listed.json()[collection]}


@pytest.mark.parametrize("method", [SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256])
def test_signed_post_is_accepted_and_builds(plain, method):
    answer = requests.post(f"{plain.url}/base_images", json=BODY,
                           auth=sign(signature_method=method), timeout=30)
    assert answer.status_code == 202, answer.text
    image = answer.json()["base_image"]
    assert image["href"] == f"{plain.url}/base_images/{image['id']}"
    done = plain.wait_for(f"/base_images/{image['id']}")
    assert done["status"] == "COMPLETE", done["status_detail"]


def test_signed_form_post_is_accepted(plain):
    form = {"template": fake_tdl("form"), "target": "fakecloud", "provider": "p1",
            "credentials": SEED_CREDENTIALS}
    answer = requests.post(f"{plain.url}/provider_images", data=form, auth=sign(), timeout=30)
    assert answer.status_code == 202, answer.text
    assert b"target=fakecloud" in answer.request.body  # signed as form fields
    image = answer.json()["provider_image"]
    assert plain.wait_for(f"/provider_images/{image['id']}")["status"] == "COMPLETE"


def test_unsigned_write_is_refused_and_creates_nothing(plain):
    before = image_ids(plain)
    assert_401(requests.post(f"{plain.url}/base_images", json=BODY, timeout=30))
    form = urlencode({"template": fake_tdl()})
    assert_401(requests.post(f"{plain.url}/base_images", data=form, timeout=30,
                             headers={"Content-Type": "application/x-www-form-urlencoded"}))
    assert_401(requests.post(f"{plain.url}/base_images", json=BODY, timeout=30,
                             headers={"Accept": "text/html"}))
    assert image_ids(plain) == before


def test_unsigned_delete_is_refused(plain):
    image = plain.post("/base_images", BODY)
    assert_401(requests.delete(f"{plain.url}/base_images/{image['id']}", timeout=30))
    assert plain.wait_for(f"/base_images/{image['id']}")["status"] == "COMPLETE"
    signed = requests.delete(f"{plain.url}/base_images/{image['id']}", auth=sign(), timeout=30)
    assert signed.status_code == 204, signed.text


@pytest.mark.parametrize(("key", "secret"), [("client1", "not-our-secret"),
                                             ("client9", "our-secret"),
                                             ("client1", "")])
def test_bad_secret_or_unknown_key_is_refused(plain, key, secret):
    before = image_ids(plain)
    assert_401(requests.post(f"{plain.url}/base_images", json=BODY,
                             auth=OAuth1(key, secret), timeout=30))
    assert image_ids(plain) == before


def test_replayed_request_is_refused(plain):
    prepared = requests.Request("POST", f"{plain.url}/base_images", json=BODY,
                                auth=sign()).prepare()
    with requests.Session() as session:
        first = session.send(prepared, timeout=30)
        assert first.status_code == 202, first.text
        before = image_ids(plain)
        replay = session.send(prepared, timeout=30)
    assert_401(replay)
    assert image_ids(plain) == before


@pytest.mark.parametrize("skew", [-3600, 3600])
def test_stale_or_future_timestamp_is_refused(plain, skew):
    answer = requests.post(f"{plain.url}/base_images", json=BODY, timeout=30,
                           auth=sign(timestamp=str(int(time.time()) + skew)))
    assert_401(answer)


def test_reads_are_open_by_default(plain):
    for path in ("", "/base_images", "/plugins", "/openapi.json"):
        answer = requests.get(plain.url + path, timeout=30)
        assert answer.status_code == 200, (path, answer.text)


def test_protected_reads_need_a_signature_over_tls(tls):
    assert tls.url.startswith("https://")
    assert tls.cert.exists()
    for path in ("/base_images", "/plugins"):
        assert_401(requests.get(tls.url + path, verify=str(tls.cert), timeout=30))
        signed = requests.get(tls.url + path, verify=str(tls.cert), auth=sign(), timeout=30)
        assert signed.status_code == 200, signed.text
    wrong = requests.get(f"{tls.url}/base_images", verify=str(tls.cert),
                         auth=OAuth1("client1", "nope"), timeout=30)
    assert_401(wrong)


@pytest.mark.parametrize("method", [SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256])
def test_signed_post_over_tls_verified_with_the_generated_certificate(tls, method):
    answer = requests.post(f"{tls.url}/base_images", json=BODY, verify=str(tls.cert),
                           auth=sign(signature_method=method), timeout=30)
    assert answer.status_code == 202, answer.text
    image = answer.json()["base_image"]
    assert image["href"].startswith("https://127.0.0.1:")
    assert tls.wait_for(f"/base_images/{image['id']}")["status"] == "COMPLETE"
    body = tls.request("GET", f"/base_images/{image['id']}/raw_image")
    assert body.status_code == 200
    assert body.content.startswith(b"FAKEOS oauth 17\n")


def test_tls_server_is_not_trusted_without_its_certificate_nor_served_in_clear(tls):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls.url, timeout=30)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(tls.url.replace("https://", "http://"), timeout=5)


def test_the_shared_secret_is_never_logged(plain, tls):
    for server in (plain, tls):
        server.post("/base_images", BODY)  # signed with client1's shared secret
        wait_until(lambda s=server: "POST /imagefactory/base_images" in s.log(), timeout=30,
                   what="the POST in the access log")
        assert CLIENTS["client1"] not in server.log()
