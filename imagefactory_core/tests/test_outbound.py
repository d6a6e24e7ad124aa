"""`OutboundPolicy.connect`: the checked socket for clients built on http.client (pyvmomi),
and the requests session's indifference to proxy variables. The same check guards the urllib3
pools (the ec2 and openstack tests)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import requests
from imagefactory_core.plugin import OutboundPolicy, OutboundRefused


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def test_a_refused_name_is_resolved_and_refused(listener):
    port = listener.getsockname()[1]
    with pytest.raises(OutboundRefused) as refused:
        OutboundPolicy().connect("localhost", port, timeout=5)
    assert "refused by the outbound policy" in refused.value.reason
    assert "loopback" in refused.value.reason


def test_an_allowed_address_is_connected_to(listener):
    port = listener.getsockname()[1]
    with OutboundPolicy(allow=("127.0.0.1",)).connect("localhost", port, timeout=5) as sock:
        accepted, _ = listener.accept()
        with accepted:
            sock.sendall(b"x")
            assert accepted.recv(1) == b"x"
        assert sock.getpeername() == ("127.0.0.1", port)
        assert sock.gettimeout() == 5


def test_a_session_does_not_let_a_proxy_variable_carry_a_refused_url(listener, monkeypatch):
    """A proxy from the environment would receive the request for a refused address and
    forward it: the session never uses one."""
    port = listener.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    listener.settimeout(0.5)
    with pytest.raises(requests.ConnectionError) as refused:
        OutboundPolicy(allow=("127.0.0.1",)).session().get("http://10.0.0.1/", timeout=5)
    assert "refused by the outbound policy" in str(refused.value)
    with pytest.raises(TimeoutError):
        listener.accept()  # the "proxy" was never contacted
