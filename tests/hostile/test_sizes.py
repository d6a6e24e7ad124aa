"""Hostile sizes and shapes against a real server: 100 MB bodies, deep nesting, bodies that are
not UTF-8, templates too large or with many thousand parts. Each is a clear 4xx or a build that
ends cleanly; the suite's conftest checks the worker's memory after each."""

from __future__ import annotations

import codecs
import http.client
import json
import socket
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from requests_oauthlib import OAuth1

from tests.rest.conftest import fake_tdl
from tests.server.conftest import ServerProcess, sign

from .conftest import assert_error, post, post_json, settled

pytestmark = pytest.mark.slow

HUNDRED_MB = 100_000_000
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # the default max_request_bytes
MAX_TEMPLATE_BYTES = 1024 * 1024  # the default max_template_bytes
MiB = 1024 * 1024


def send_head(server: ServerProcess, head: str, first: bytes) -> tuple[socket.socket, Any]:
    """Open a connection, send a request head and the start of its body, read the answer."""
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    connection.sendall(head.encode("latin-1") + first)
    answer = http.client.HTTPResponse(connection)
    answer.begin()
    return connection, answer


def test_a_100_mb_body_is_413_before_it_is_read(server):
    head = ("POST /imagefactory/base_images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {HUNDRED_MB}\r\n\r\n")
    connection, answer = send_head(server, head, b"{" + b" " * (64 * 1024))
    with connection:
        body = json.loads(answer.read())
        assert answer.status == 413, body
        assert str(MAX_REQUEST_BYTES) in body["description"], body
        assert "max_request_bytes" in body["description"], body
        # the server does not read the rest: it closes the connection long before 100 MB
        sent = 64 * 1024
        with pytest.raises(OSError):
            while sent < HUNDRED_MB:
                connection.sendall(b" " * MiB)
                sent += MiB
        assert sent < HUNDRED_MB // 2


def test_a_100_mb_body_without_a_length_is_411(server):
    head = ("POST /imagefactory/base_images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    connection, answer = send_head(server, head, b"%x\r\n%s\r\n" % (MiB, b" " * MiB))
    with connection:
        assert answer.status == 411
        assert "Content-Length" in json.loads(answer.read())["description"]


@pytest.mark.parametrize("content_type", ["application/json", "application/xml",
                                          "application/x-www-form-urlencoded"])
def test_a_body_just_over_the_limit_is_413(server, content_type):
    answer = post(server, "base_images", b"x" * (MAX_REQUEST_BYTES + 1), content_type)
    assert_error(answer, 413, str(MAX_REQUEST_BYTES))


@pytest.mark.parametrize("auth", [sign(), OAuth1("no-such-client", "guess")],
                         ids=["signed", "unknown key"])
def test_a_form_of_percent_escapes_is_checked_in_bounded_memory(server, auth):
    """Just under the limit, every character escaped: decoding such a form as text for the
    OAuth check once took ~85 times its size (4 MiB: +350 MB), for a key that signs or not."""
    body = urlencode({"parameters": "[" * ((MAX_REQUEST_BYTES - 64) // 3)})
    answer = requests.post(f"{server.url}/base_images", data=body, auth=auth, timeout=60,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(answer, 400 if auth is not None and auth.client.client_key == "client1"
                 else 401)


def test_a_signed_form_with_a_repeated_field_is_a_clear_400(server):
    """Both values are signed and checked, so the request gets past OAuth to the parser."""
    body = urlencode([("template", fake_tdl()), ("target", "a"), ("target", "b")])
    answer = post(server, "target_images", body, "application/x-www-form-urlencoded")
    assert_error(answer, 400, "target", "more than once")


# -- deep nesting -------------------------------------------------------------------------------
DEEP = 100_000


@pytest.mark.parametrize(("collection", "body", "content_type"), [
    pytest.param("base_images", "[" * DEEP + "]" * DEEP, "application/json", id="JSON array"),
    pytest.param("base_images", '{"base_image": {"parameters": ' + '{"a": ' * DEEP + "1"
                 + "}" * DEEP + "}}", "application/json", id="JSON parameters"),
    pytest.param("base_images", urlencode({"template": fake_tdl(),
                                           "parameters": "[" * DEEP + "]" * DEEP}),
                 "application/x-www-form-urlencoded", id="JSON in a form field"),
    pytest.param("provider_images", json.dumps({"provider_image": {
        "template": fake_tdl(), "target": "fakecloud", "provider": "{" + '"a": {' * DEEP,
        "credentials": "{}"}}), "application/json", id="JSON provider text"),
    pytest.param("base_images", "<base_image>" + "<a>" * DEEP + "</a>" * DEEP + "</base_image>",
                 "application/xml", id="XML body"),
    pytest.param("base_images", json.dumps({"base_image": {"template": fake_tdl().replace(
        "Fake 17", "<a>" * DEEP + "</a>" * DEEP)}}), "application/json", id="XML template"),
    pytest.param("base_images", json.dumps({"base_image": {"template": fake_tdl().replace(
        "Fake 17", "<a>" * 250 + "</a>" * 250)}}), "application/json",
        id="XML template just under the parser's depth limit"),
])
def test_deep_nesting_is_a_400(server, collection, body, content_type):
    answer = post(server, collection, body, content_type)
    assert_error(answer, 400)


# -- bodies that are not UTF-8 ------------------------------------------------------------------
@pytest.mark.parametrize(("body", "content_type", "words"), [
    pytest.param(json.dumps({"base_image": {"template": fake_tdl().replace("Fake", "F\xe4ke")}},
                            ensure_ascii=False).encode("latin-1"), "application/json",
                 ("utf-8",), id="JSON in Latin-1"),
    pytest.param(b'{"base_image": {"template": "\xff\xfe\xfd"}}', "application/json",
                 ("utf-8",), id="JSON with invalid bytes"),
    pytest.param(f"<base_image>{fake_tdl()}</base_image>".replace("Fake", "F\xe4ke")
                 .encode("latin-1"), "application/xml", ("not UTF-8",), id="XML in Latin-1"),
    pytest.param(b"<base_image>\xc3\x28</base_image>", "text/xml", ("not UTF-8",),
                 id="XML with a broken sequence"),
    pytest.param(codecs.BOM_UTF16_LE + "<base_image>".encode("utf-16-le") + b"\x00\xd8",
                 "application/xml", ("UTF-16",), id="XML with a lone surrogate"),
    pytest.param(b"template=%FF%FE%3Ctemplate%3E", "application/x-www-form-urlencoded", (),
                 id="form with invalid percent-escapes"),
])
def test_a_body_that_is_not_utf8_is_a_clear_400(server, body, content_type, words):
    assert_error(post(server, "base_images", body, content_type), 400, *words)


def test_a_form_of_raw_invalid_bytes_is_a_clear_4xx(server):
    """No OAuth client can sign such a form (the signature base string is text), so it comes
    unsigned: refused, with JSON, whichever check refuses it first."""
    answer = requests.post(f"{server.url}/base_images", data=b"template=\xff\xfe<template>",
                           headers={"Content-Type": "application/x-www-form-urlencoded"},
                           timeout=30)
    assert answer.status_code in (400, 401), answer.text
    assert_error(answer, answer.status_code)


def test_a_non_ascii_header_is_refused_or_ignored(server):
    head = ("GET /imagefactory/base_images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Accept: application/json; q=\xff\r\nX-Name: caf\xe9\r\n\r\n")
    connection, answer = send_head(server, head, b"")
    with connection:
        assert answer.status in (200, 400, 406), answer.status
        if answer.status != 200:
            assert json.loads(answer.read())["description"]


# -- large templates ----------------------------------------------------------------------------
def padded(size: int) -> str:
    """A valid template of exactly `size` bytes (the padding is in its description)."""
    template = fake_tdl("padded")
    return template.replace("Fake 17", "Fake 17" + "x" * (size - len(template.encode())))


def test_a_template_over_the_limit_is_a_400(server):
    answer = post_json(server, "base_images", {"template": padded(MAX_TEMPLATE_BYTES + 1)})
    assert_error(answer, 400, "larger than the limit", str(MAX_TEMPLATE_BYTES))


def test_a_template_at_the_limit_builds(server):
    image = settled(server, post_json(server, "base_images",
                                      {"template": padded(MAX_TEMPLATE_BYTES)}))
    assert image["status"] == "COMPLETE", image["status_detail"]


def with_parts(packages: str = "", files: str = "", repositories: str = "",
               commands: str = "") -> str:
    return fake_tdl("many").replace("<packages><package name='httpd'/></packages>", (
        f"<packages>{packages}</packages><files>{files}</files>"
        f"<repositories>{repositories}</repositories><commands>{commands}</commands>"))


MANY = {
    "20000 packages": with_parts(packages="".join(f"<package name='p{i}'/>"
                                                  for i in range(20_000))),
    "5000 files": with_parts(files="".join(f"<file name='/etc/f{i}'>content {i}</file>"
                                           for i in range(5_000))),
    "5000 repositories": with_parts(repositories="".join(
        f"<repository name='r{i}'><url>http://127.0.0.1:9/r{i}</url></repository>"
        for i in range(5_000))),
    "5000 commands in reverse order": with_parts(commands="".join(
        f"<command name='c{i}' position='{i}'>true</command>" for i in range(5_000, 0, -1))),
}


@pytest.mark.parametrize("template", MANY.values(), ids=MANY.keys())
def test_a_template_with_many_thousand_parts_builds(server, template):
    assert len(template.encode()) <= MAX_TEMPLATE_BYTES
    image = settled(server, post_json(server, "base_images", {"template": template}))
    assert image["status"] == "COMPLETE", image["status_detail"]


def test_many_thousand_parts_in_a_broken_template_name_the_fault(server):
    """The schema checks long lists in linear time, and still names the line at fault."""
    packages = "".join(f"<package name='p{i}'/>" for i in range(20_000))
    broken = with_parts(packages=packages + "<package/>")
    answer = post_json(server, "base_images", {"template": broken})
    assert_error(answer, 400, "<package> is missing attribute name")
