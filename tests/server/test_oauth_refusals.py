"""Every way a request fails OAuth, against a real `imagefactory serve` process: a 400 for a
malformed, incomplete or unsupported request (RFC 5849 §3.2), a 401 for one that is not (or no
longer) validly signed, each with a JSON message a person can act on. An unknown consumer key and
a wrong signature get the same answer; only the service log says which. A nonce is recorded only
for a request whose signature verified."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
import requests
from oauthlib.oauth1 import Client

from tests.rest.conftest import fake_tdl

from .conftest import CLIENTS, ServerProcess

pytestmark = pytest.mark.slow

BODY = {"base_image": {"template": fake_tdl("refusals")}}


def authorization(server: ServerProcess, method: str = "POST", path: str = "/base_images",
                  key: str = "client1", secret: str | None = None, body: Any = None,
                  **signing: Any) -> str:
    """The Authorization header oauthlib's client makes for a request to `path`."""
    client = Client(key, client_secret=CLIENTS.get(key, "x") if secret is None else secret,
                    **signing)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else None
    _, signed, _ = client.sign(server.url + path, http_method=method, body=body, headers=headers)
    return str(signed["Authorization"])


def send(server: ServerProcess, header: str | None, method: str = "POST",
         path: str = "/base_images", **kwargs: Any) -> requests.Response:
    headers = {"Authorization": header} if header is not None else {}
    if method == "POST" and "data" not in kwargs:
        kwargs["json"] = BODY
    return requests.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def refusal(answer: requests.Response, status: int, *words: str) -> dict[str, str]:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"title", "description"}, body
    assert body["title"].strip() and body["description"].strip(), body
    for word in words:
        assert word.lower() in body["description"].lower(), (word, body["description"])
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == 'OAuth realm="imagefactory"'
    return dict(body)


def nonce_rows(server: ServerProcess) -> int:
    with sqlite3.connect(f"file:{server.state_dir / 'imagefactory.db'}?mode=ro",
                         uri=True) as db:
        return int(db.execute("SELECT count(*) FROM oauth_nonces").fetchone()[0])


def image_count(server: ServerProcess) -> int:
    return len(server.request("GET", "/base_images").json()["base_images"])


def test_no_authorization_header_is_a_401_naming_what_to_send(server):
    refusal(send(server, None), 401, "Authorization header", "OAuth 1.0a")


def test_another_scheme_is_a_401_naming_oauth(server):
    refusal(send(server, "Basic Y2xpZW50MTpvdXItc2VjcmV0"), 401, "'Basic'", "OAuth 1.0a")


@pytest.mark.parametrize("header", ["OAuth garbage", 'OAuth oauth_nonce="a", ,', "OAuth realm"])
def test_a_malformed_authorization_header_is_a_400(server, header):
    refusal(send(server, header), 400, "malformed", 'name="percent-encoded value"')


@pytest.mark.parametrize("dropped", ["oauth_nonce", "oauth_timestamp", "oauth_signature",
                                     "oauth_signature_method", "oauth_consumer_key"])
def test_a_missing_oauth_parameter_is_a_400_naming_it(server, dropped):
    parts = authorization(server).removeprefix("OAuth ").split(", ")
    header = "OAuth " + ", ".join(p for p in parts if not p.startswith(dropped + "="))
    refusal(send(server, header), 400, f"lacks {dropped}")


def test_a_repeated_oauth_parameter_is_a_400(server):
    header = authorization(server) + ', oauth_nonce="another"'
    refusal(send(server, header), 400, "oauth_nonce more than once")


def test_oauth_parameters_also_in_the_query_are_a_400(server):
    path = "/base_images?oauth_nonce=x"
    refusal(send(server, authorization(server, path=path), path=path), 400,
            "oauth_nonce", "Authorization header only")


def test_a_wrong_oauth_version_is_a_400(server):
    header = authorization(server).replace('oauth_version="1.0"', 'oauth_version="2.0"')
    assert 'oauth_version="2.0"' in header
    refusal(send(server, header), 400, "oauth_version", "1.0")


def test_an_unsupported_signature_method_is_a_400(server):
    header = authorization(server, signature_method="PLAINTEXT")
    refusal(send(server, header), 400, "PLAINTEXT", "HMAC-SHA1", "HMAC-SHA256")


def test_a_timestamp_that_is_not_a_number_is_a_400(server):
    header = authorization(server, timestamp="yesterday")
    refusal(send(server, header), 400, "oauth_timestamp", "seconds since 1970")


@pytest.mark.parametrize("skew", [-3600, 3600], ids=["stale", "future"])
def test_a_timestamp_outside_the_window_is_a_401_saying_to_check_the_clock(server, skew):
    header = authorization(server, timestamp=str(int(time.time()) + skew))
    refusal(send(server, header), 401, "outside the allowed window of 600 s", "clock")


def test_an_unknown_key_and_a_bad_signature_get_the_same_answer(server):
    unknown = send(server, authorization(server, key="client9", secret="our-secret"))
    bad = send(server, authorization(server, secret="not-our-secret"))
    body = refusal(unknown, 401, "consumer key", "shared secret")
    assert refusal(bad, 401) == body
    assert (bad.status_code, bad.headers["WWW-Authenticate"], bad.content) == (
        unknown.status_code, unknown.headers["WWW-Authenticate"], unknown.content)
    log = server.log()
    assert "(consumer key 'client9'): unknown consumer key" in log
    assert "(consumer key 'client1'): bad signature" in log
    assert CLIENTS["client1"] not in log


def test_a_forged_request_records_no_nonce_and_a_replay_is_a_401(server):
    before_images, before_nonces = image_count(server), nonce_rows(server)
    timestamp, nonce = str(int(time.time())), "forged-then-genuine-0001"
    forged = authorization(server, secret="not-our-secret", timestamp=timestamp, nonce=nonce)
    refusal(send(server, forged), 401)
    refusal(send(server, authorization(server, key="client9", timestamp=timestamp,
                                       nonce=nonce)), 401)
    assert nonce_rows(server) == before_nonces
    # the nonce was not burnt: the genuine client can still use it
    genuine = authorization(server, timestamp=timestamp, nonce=nonce)
    assert send(server, genuine).status_code == 202
    assert nonce_rows(server) == before_nonces + 1
    refusal(send(server, genuine), 401, "replayed", "new nonce")
    assert image_count(server) == before_images + 1


def test_a_replayed_signed_read_of_a_log_is_a_401(server):
    image = server.post("/base_images", BODY)
    path = f"/base_images/{image['id']}/log"
    server.wait_for(f"/base_images/{image['id']}")
    refusal(send(server, None, "GET", path), 401, "Authorization header")
    header = authorization(server, "GET", path)
    first = send(server, header, "GET", path)
    assert first.status_code == 200, first.text
    assert "== COMPLETE" in first.text
    refusal(send(server, header, "GET", path), 401, "replayed")
