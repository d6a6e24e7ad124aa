"""OAuthMiddleware against real signed requests: a Falcon app served over HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, make_server

import falcon
import pytest
import requests
from imagefactory_core.api.oauth import CHALLENGE, MemoryNonceStore, OAuthMiddleware
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, SIGNATURE_PLAINTEXT
from requests_oauthlib import OAuth1

CLIENTS = {"client1": "our-secret", "client2": "just-between-us"}
PATH = "/imagefactory/things"
EXEMPT = "/imagefactory/openapi.json"
SERVER_THREAD = "oauth-test-server"


class Things:
    """Echoes who signed the request and, for POST, the body as the responder sees it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"client": req.context.oauth_client}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_201
        resp.media = {
            "client": req.context.oauth_client,
            "body": req.get_media() if req.content_length else None,
        }

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_204

    def on_post_item(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.status = falcon.HTTP_201
        resp.media = {"client": req.context.oauth_client, "name": name}


def render_http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict[str, Any]
) -> None:
    resp.status = ex.status
    resp.media = {"title": ex.title, "description": ex.description}
    for name, value in (ex.headers or {}).items():
        resp.set_header(name, value)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start the app with `OAuthMiddleware(CLIENTS, store, **options)`; returns the things URL."""
    running = []

    def start(**options: Any) -> str:
        window = options.get("timestamp_window", 600)
        store = options.pop("nonce_store", None)
        if store is None:  # not `or`: an empty MemoryNonceStore is falsy (it has a length)
            store = MemoryNonceStore(window)
        app = falcon.App(middleware=[OAuthMiddleware(CLIENTS, store, **options)])
        # As in the real app: Falcon's req.path and req.uri then lose a trailing slash.
        app.req_options.strip_url_path_trailing_slash = True
        app.add_route(PATH, Things())
        app.add_route(PATH + "/{name}", Things(), suffix="item")
        app.add_route(EXEMPT, Things())
        app.add_error_handler(falcon.HTTPError, render_http_error)
        server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
        # A short poll interval keeps shutdown() from costing half a second per test.
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=SERVER_THREAD, daemon=True
        )
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}{PATH}"

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join()
        server.server_close()


def auth(key: str = "client1", secret: str | None = None, **kwargs: Any) -> OAuth1:
    """Two-legged: consumer key and secret, no token."""
    return OAuth1(key, CLIENTS.get(key, "whatever") if secret is None else secret, **kwargs)


def ago(seconds: int) -> str:
    return str(int(time.time()) - seconds)


def assert_401(response: requests.Response, *words: str) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"title", "description"}
    for word in words:
        assert word.lower() in body["description"].lower()
    return body["description"]


def test_hmac_sha1_signature_is_accepted(serve: Callable[..., str]) -> None:
    url = serve()
    response = requests.post(url, json={"base_image": {"template": "<template/>"}}, auth=auth())
    assert response.status_code == 201, response.text
    assert response.json() == {
        "client": "client1",
        "body": {"base_image": {"template": "<template/>"}},
    }


def test_hmac_sha256_signature_is_accepted(serve: Callable[..., str]) -> None:
    url = serve()
    response = requests.delete(url, auth=auth("client2", signature_method=SIGNATURE_HMAC_SHA256))
    assert response.status_code == 204, response.text


def test_form_body_is_signed_and_still_reaches_the_responder(serve: Callable[..., str]) -> None:
    url = serve()
    fields = [
        ("target", "ec2"),
        ("credentials", "<provider_credentials>a+b & c=d</provider_credentials>"),
        ("tag", "one"),
        ("tag", "two words"),
        ("description", "café ✓"),
    ]
    response = requests.post(f"{url}?dry_run=1", data=fields, auth=auth())
    assert response.status_code == 201, response.text
    assert response.json()["body"] == {
        "target": "ec2",
        "credentials": "<provider_credentials>a+b & c=d</provider_credentials>",
        "tag": ["one", "two words"],
        "description": "café ✓",
    }


@pytest.mark.parametrize(
    ("suffix", "name"),
    [("/", None), ("/café ✓", "café ✓"), ("/a;b=c,d[1]", "a;b=c,d[1]"), ("/50%25", "50%")],
)
def test_path_is_checked_as_the_client_sent_it(
    serve: Callable[..., str], suffix: str, name: str | None
) -> None:
    url = serve()
    response = requests.post(url + suffix, json={}, auth=auth())
    assert response.status_code == 201, response.text
    if name is not None:
        assert response.json()["name"] == name


@pytest.mark.parametrize("tamper", ["body", "query", "path"])
def test_changing_a_signed_form_field_or_query_breaks_the_signature(
    serve: Callable[..., str], tamper: str
) -> None:
    url = serve()
    prepared = requests.Request(
        "POST", f"{url}?dry_run=1", data={"target": "ec2"}, auth=auth()
    ).prepare()
    if tamper == "body":
        prepared.prepare_content_length("target=rhevm")
        prepared.body = "target=rhevm"
    elif tamper == "query":
        prepared.url = f"{url}?dry_run=0"
    else:
        prepared.url = f"{url}/other?dry_run=1"
    with requests.Session() as session:
        assert_401(session.send(prepared), "signature")


def test_query_string_that_is_not_urlencoded_is_refused(serve: Callable[..., str]) -> None:
    url = serve()
    signed = requests.Request("POST", url, auth=auth()).prepare()
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
    try:
        connection.request(
            "POST", f"{PATH}?q=%zz", headers={"Authorization": signed.headers["Authorization"]}
        )
        response = connection.getresponse()
        assert response.status == 401
        assert response.getheader("WWW-Authenticate") == CHALLENGE
        assert "query string" in json.loads(response.read())["description"]
    finally:
        connection.close()


def test_missing_authorization_is_refused_with_challenge_and_json(
    serve: Callable[..., str],
) -> None:
    url = serve()
    response = requests.post(url, json={})
    description = assert_401(response, "Authorization")
    assert response.json()["title"] == "Authentication required"
    assert "OAuth" in description


def test_other_authorization_schemes_are_refused(serve: Callable[..., str]) -> None:
    url = serve()
    assert_401(requests.post(url, json={}, auth=("client1", "our-secret")), "Basic", "OAuth")
    bare = requests.post(url, json={}, headers={"Authorization": "s3cr3t-token"})
    assert "s3cr3t" not in assert_401(bare, "does not name the OAuth scheme")


def test_wrong_secret_is_refused(serve: Callable[..., str]) -> None:
    url = serve()
    description = assert_401(requests.post(url, json={}, auth=auth(secret="guess")), "signature")
    assert "guess" not in description and "our-secret" not in description


def test_unknown_consumer_key_is_refused_as_a_wrong_secret_is(
    serve: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """Nobody can tell from the answer whether a key exists; the service log says which."""
    url = serve()
    caplog.set_level(logging.INFO, logger="imagefactory_core.api.oauth")
    unknown = requests.post(url, json={}, auth=auth("intruder"))
    assert_401(unknown, "consumer key", "shared secret")
    wrong = requests.post(url, json={}, auth=auth(secret="guess"))
    assert (wrong.status_code, wrong.headers, wrong.content) == (
        unknown.status_code, {**unknown.headers, "Date": wrong.headers["Date"]}, unknown.content)
    assert "'intruder'): unknown consumer key" in caplog.text
    assert "'client1'): bad signature" in caplog.text


def test_unsupported_signature_method_is_a_400(serve: Callable[..., str]) -> None:
    url = serve()
    response = requests.post(url, json={}, auth=auth(signature_method=SIGNATURE_PLAINTEXT))
    assert response.status_code == 400, response.text
    assert "signature method" in response.json()["description"]
    assert "HMAC-SHA1" in response.json()["description"]


def test_replayed_request_is_refused(serve: Callable[..., str]) -> None:
    url = serve()
    prepared = requests.Request("POST", url, data={"target": "ec2"}, auth=auth()).prepare()
    with requests.Session() as session:
        assert session.send(prepared).status_code == 201
        assert_401(session.send(prepared), "nonce", "replayed")


def test_a_forged_request_records_no_nonce(serve: Callable[..., str]) -> None:
    """oauthlib asks about the nonce before it checks the signature: recording it there would
    let anyone who knows a key fill the store, and burn the nonces of a client's next requests."""
    store = MemoryNonceStore()
    url = serve(nonce_store=store)
    timestamp = ago(0)
    forged = requests.post(url, json={}, auth=auth(secret="guess", nonce="n" * 24,
                                                   timestamp=timestamp))
    assert_401(forged)
    assert len(store) == 0
    genuine = requests.post(url, json={}, auth=auth(nonce="n" * 24, timestamp=timestamp))
    assert genuine.status_code == 201, genuine.text
    assert len(store) == 1


def test_same_nonce_from_another_client_is_not_a_replay(serve: Callable[..., str]) -> None:
    url = serve()
    timestamp = ago(0)
    for key in CLIENTS:
        response = requests.post(url, json={}, auth=auth(key, nonce="n" * 24, timestamp=timestamp))
        assert response.status_code == 201, response.text


def test_stale_timestamp_is_refused(serve: Callable[..., str]) -> None:
    url = serve()
    response = requests.post(url, json={}, auth=auth(timestamp=ago(700)))
    assert_401(response, "timestamp", "window of 600 s")


def test_timestamp_from_the_future_is_refused(serve: Callable[..., str]) -> None:
    url = serve()
    assert_401(requests.post(url, json={}, auth=auth(timestamp=ago(-700))), "timestamp")


def test_smaller_window_is_honoured(serve: Callable[..., str]) -> None:
    url = serve(timestamp_window=30)
    assert_401(requests.post(url, json={}, auth=auth(timestamp=ago(60))), "window of 30 s")
    assert requests.post(url, json={}, auth=auth(timestamp=ago(10))).status_code == 201


def test_window_larger_than_oauthlibs_default_is_honoured(serve: Callable[..., str]) -> None:
    url = serve(timestamp_window=1200)
    assert requests.post(url, json={}, auth=auth(timestamp=ago(900))).status_code == 201


def test_reads_are_open_by_default(serve: Callable[..., str]) -> None:
    url = serve()
    response = requests.get(url)
    assert response.status_code == 200
    assert response.json() == {"client": None}


def test_reads_need_a_signature_when_protected(serve: Callable[..., str]) -> None:
    url = serve(protect_reads=True)
    assert_401(requests.get(url), "Authorization")
    response = requests.get(url, auth=auth())
    assert response.status_code == 200
    assert response.json() == {"client": "client1"}


def test_exempt_paths_need_no_signature(serve: Callable[..., str]) -> None:
    url = serve(protect_reads=True, exempt_paths={EXEMPT})
    exempt = url.replace(PATH, EXEMPT)
    assert requests.get(exempt).status_code == 200
    assert requests.post(exempt, json={}).status_code == 201
    assert_401(requests.post(url, json={}))


@pytest.mark.parametrize(("trusted", "status"), [(True, 201), (False, 401)])
def test_uri_seen_through_a_proxy(serve: Callable[..., str], trusted: bool, status: int) -> None:
    """The client signs the public https URL; the proxy forwards to us over plain HTTP."""
    url = serve(trust_proxy_headers=trusted)
    public = "https://imagefactory.example.org" + PATH
    prepared = requests.Request("POST", public, json={}, auth=auth()).prepare()
    prepared.url = url
    prepared.headers["X-Forwarded-Proto"] = "https"
    prepared.headers["X-Forwarded-Host"] = "imagefactory.example.org"
    with requests.Session() as session:
        assert session.send(prepared).status_code == status


def test_secrets_and_form_fields_stay_out_of_the_server_log(
    serve: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    url = serve()
    caplog.set_level(logging.DEBUG)
    credentials = "<provider_credentials>AKIA-SECRET-KEY</provider_credentials>"
    response = requests.post(url, data={"credentials": credentials}, auth=auth(secret="wrong"))
    assert_401(response, "signature")
    server_lines = [r.getMessage() for r in caplog.records if r.threadName == SERVER_THREAD]
    assert any("OAuth refused POST" in line for line in server_lines)
    for line in server_lines:
        assert "AKIA-SECRET-KEY" not in line
        assert "our-secret" not in line and "wrong" not in line


def test_memory_nonce_store_remembers_within_its_window_only() -> None:
    now = 1_700_000_000.0
    store = MemoryNonceStore(window=600, clock=lambda: now)
    assert store.use("client1", "abc", int(now))
    assert not store.use("client1", "abc", int(now))
    assert store.use("client1", "abc", int(now) + 1)
    assert store.use("client2", "abc", int(now))
    assert len(store) == 3
    now += 601
    assert store.use("client1", "xyz", int(now))
    assert len(store) == 2  # the two entries stamped `now` - 601 s are forgotten


def test_memory_nonce_store_is_thread_safe() -> None:
    store = MemoryNonceStore()
    timestamp = int(time.time())
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        results.append(store.use("client1", "same-nonce", timestamp))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


@pytest.mark.parametrize(
    ("clients", "store", "message"),
    [
        (CLIENTS, MemoryNonceStore(window=60), "replayed"),
        ({"client1": ""}, MemoryNonceStore(), "empty shared secret"),
        ({"bad\nkey": "secret"}, MemoryNonceStore(), "printable ASCII"),
    ],
)
def test_misconfiguration_is_refused_at_start(
    clients: dict[str, str], store: MemoryNonceStore, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        OAuthMiddleware(clients, store, timestamp_window=600)
