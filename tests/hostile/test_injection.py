"""Header and log injection against a real server: CR/LF (raw or percent-encoded) in anything
that may come back in a response header (Location above all) or go into the service log never
makes a header or a log line of its own."""

from __future__ import annotations

import http.client
import socket

import pytest
import requests

from tests.rest.conftest import fake_tdl
from tests.server.conftest import ServerProcess

from .conftest import assert_error, post_json, settled, wait_for_log

pytestmark = pytest.mark.slow



def forged(tag: str) -> str:
    """A line as the service log writes them, told apart by `tag`."""
    return f"2026-11-30 00:00:00,000 INFO imagefactory: forged line {tag}"

CRLF = "%0D%0A"


def raw_request(server: ServerProcess, request: bytes) -> http.client.HTTPResponse:
    """Send bytes `requests` would refuse to send; the answer, read whole."""
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    connection.sendall(request)
    answer = http.client.HTTPResponse(connection)
    answer.begin()
    answer.read()
    connection.close()
    return answer


def assert_not_injected(headers: http.client.HTTPMessage | requests.structures.CaseInsensitiveDict
                        ) -> None:
    assert "Set-Cookie" not in headers and "X-Injected" not in headers, dict(headers)
    for name, value in headers.items():
        assert "\r" not in value and "\n" not in value, (name, value)


def test_location_of_a_new_image_never_carries_the_query(server):
    answer = server.request("POST", f"/base_images?x={CRLF}Set-Cookie:%20a=b{CRLF}X-Injected:%201",
                            json={"base_image": {"template": fake_tdl("located")}})
    image = settled(server, answer)
    assert answer.headers["Location"] == f"{server.url}/base_images/{image['id']}"
    assert_not_injected(answer.headers)


@pytest.mark.parametrize("path", [
    f"/base_images/x{CRLF}Set-Cookie:%20a=b",
    f"/base_images/x{CRLF}{CRLF}X-Injected:%201",
    f"/base_images{CRLF}Set-Cookie:%20a=b/target_images",
    "/base_images/x%0AX-Injected:%201/raw_image",
])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_crlf_in_a_path_is_a_404_with_no_injected_header(server, path, method):
    body = {"target_image": {"target": "fakecloud", "template": fake_tdl()}} \
        if method == "POST" else None
    answer = server.request(method, path, json=body)
    assert answer.status_code in (404, 405), answer.text
    assert_error(answer, answer.status_code)
    assert_not_injected(answer.headers)


@pytest.mark.parametrize("header", [
    b"X-Forwarded-Host: evil\r\nSet-Cookie: a=b",  # a header of its own: harmless
    b"X-Forwarded-Host: evil\r\n Set-Cookie: a=b",  # obsolete line folding
    b"X-Forwarded-Host: evil\rSet-Cookie: a=b",  # a bare CR
    b"Host: 127.0.0.1\rX-Injected: 1",
])
def test_crlf_in_a_request_header_never_reaches_a_response_header(server, header):
    answer = raw_request(server, b"GET /imagefactory/base_images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 + header + b"\r\nConnection: close\r\n\r\n")
    # the HTTP parser refuses what it cannot read (400) or the request is served as sent
    assert answer.status in (200, 400), answer.status
    assert_not_injected(answer.headers)


@pytest.mark.parametrize("encoded", ["%0A", "%0D%0A", "%0D"])
def test_crlf_in_a_refused_request_makes_no_log_line(server, encoded):
    """OAuth refusals are logged with the request's path: a path can not forge a line."""
    marker = f"refused-{encoded.replace('%', '')}"
    line = forged(marker)
    path = f"/base_images/{marker}{encoded}{line.replace(' ', '%20')}"
    answer = requests.delete(server.url + path, timeout=30)  # unsigned: refused and logged
    assert_error(answer, 401)
    log = wait_for_log(server, marker)
    assert not any(logged.startswith(line) for logged in log.splitlines()), \
        [logged for logged in log.splitlines() if marker in logged]


def test_crlf_in_a_template_name_stays_in_its_image(server):
    """What a template says is data: its lines appear in no log of the service."""
    line = forged("template")
    image = settled(server, post_json(server, "base_images",
                                      {"template": fake_tdl(f"named\n{line}")}))
    assert image["status"] == "COMPLETE", image["status_detail"]
    build_log = server.request("GET", f"/base_images/{image['id']}/log").text
    for log in (server.log(), build_log):
        assert not any(logged.startswith(line) for logged in log.splitlines())
