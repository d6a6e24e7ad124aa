"""Network: loopback only, or an egress proxy that refuses loopback and private addresses.

Tests send packets only to 127.0.0.1 and to a network namespace they create themselves."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from imagefactory_core.sandbox import EgressPolicy, SandboxSpec

Run = Callable[..., Any]
PYTHON = sys.executable


@dataclass
class Listener:
    port: int
    connections: list[tuple[str, int]]


@contextlib.contextmanager
def listening(handle: Callable[[socket.socket], None]) -> Iterator[Listener]:
    """A listener on the host's 127.0.0.1 that records every connection and hands it to
    `handle` (on a thread of its own), until the block ends."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    listener = Listener(server.getsockname()[1], [])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, peer = server.accept()
            except TimeoutError:
                continue
            listener.connections.append(peer)
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        stop.set()
        thread.join()
        server.close()


@pytest.fixture
def host_listener() -> Iterator[Listener]:
    """A listener on the host's 127.0.0.1 that records every connection it gets."""
    with listening(lambda connection: connection.close()) as listener:
        yield listener


def _connect_script(port: int) -> str:
    return (f"nc -w 2 127.0.0.1 {port} </dev/null && echo DIRECT-CONNECTED; "
            f"printf 'CONNECT 127.0.0.1:{port} HTTP/1.1\\r\\n\\r\\n' | nc -w 3 127.0.0.1 3128; "
            "ip -o link | cut -d: -f2")


def test_network_none_has_only_loopback(tree: Path, run_sandbox: Run,
                                        host_listener: Listener) -> None:
    result = run_sandbox(SandboxSpec(root=tree), ["sh", "-c", _connect_script(host_listener.port)])
    assert "DIRECT-CONNECTED" not in result.stdout
    assert "200" not in result.stdout
    assert result.stdout.split() == ["lo"]
    assert host_listener.connections == []


def test_egress_refuses_the_hosts_loopback(tree: Path, run_sandbox: Run,
                                           host_listener: Listener) -> None:
    policy = EgressPolicy(ports=(host_listener.port,))
    spec = SandboxSpec(root=tree, network="egress", egress=policy)
    result = run_sandbox(spec, ["sh", "-c", _connect_script(host_listener.port)])
    assert "DIRECT-CONNECTED" not in result.stdout
    assert "403 Forbidden" in result.stdout
    assert "a loopback address" in result.stdout
    assert "sandbox: egress refused: CONNECT 127.0.0.1" in result.stderr
    assert host_listener.connections == []


@dataclass
class PrivateServer:
    address: str
    port: int


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[PrivateServer]:
    """An HTTP server at a 10.199.x.2 address inside a network namespace made for the test,
    joined to the host by a veth pair; all removed afterwards."""
    tag = f"{os.getpid() % 250 + 1}"
    namespace, host_end, inner_end = f"ifsbx{tag}", f"ifsbxh{tag}", f"ifsbxn{tag}"
    address, port = f"10.199.{tag}.2", 8080
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "hello.txt").write_text("hello from the private network\n")

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True)

    ip("netns", "add", namespace)
    server = None
    try:
        ip("link", "add", host_end, "type", "veth", "peer", "name", inner_end)
        ip("link", "set", inner_end, "netns", namespace)
        ip("addr", "add", f"10.199.{tag}.1/30", "dev", host_end)
        ip("link", "set", host_end, "up")
        ip("-n", namespace, "addr", "add", f"{address}/30", "dev", inner_end)
        ip("-n", namespace, "link", "set", inner_end, "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        server = subprocess.Popen(["ip", "netns", "exec", namespace, PYTHON, "-m", "http.server",
                                   "--bind", address, "--directory", str(tmp_path / "site"),
                                   str(port)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection((address, port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield PrivateServer(address, port)
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", host_end], stderr=subprocess.DEVNULL)
        ip("netns", "del", namespace)


def test_egress_refuses_a_private_address(tree: Path, run_sandbox: Run,
                                          private_server: PrivateServer) -> None:
    spec = SandboxSpec(root=tree, network="egress",
                       egress=EgressPolicy(ports=(private_server.port,)))
    url = f"http://{private_server.address}:{private_server.port}/hello.txt"
    result = run_sandbox(spec, ["sh", "-c", f"wget -q -O - {url} || echo FAILED"])
    assert "hello from the private network" not in result.stdout
    assert "FAILED" in result.stdout
    assert f"{private_server.address} (a private address)" in result.stderr


def test_egress_reaches_an_allow_listed_address(tree: Path, run_sandbox: Run,
                                                private_server: PrivateServer) -> None:
    policy = EgressPolicy(allow=(f"{private_server.address}/32",), ports=(private_server.port,))
    spec = SandboxSpec(root=tree, network="egress", egress=policy)
    target = f"{private_server.address}:{private_server.port}"
    script = (f"wget -q -O - http://{target}/hello.txt; "
              f"printf 'CONNECT {target} HTTP/1.1\\r\\n\\r\\nGET /hello.txt HTTP/1.0\\r\\n\\r\\n'"
              " | nc -w 3 127.0.0.1 3128")
    result = run_sandbox(spec, ["sh", "-c", script])
    assert result.stdout.count("hello from the private network") == 2, result.stderr
    assert f"sandbox: egress: GET {target}" in result.stderr
    assert f"sandbox: egress: CONNECT {target}" in result.stderr


@pytest.fixture
def upstream_proxy() -> Iterator[Listener]:
    """An HTTP proxy of the operator's on 127.0.0.1 (an apt cache, say): answers every request
    itself, and every CONNECT with 200 and then a canned response, recording what it got."""
    requests: list[str] = []

    def serve(connection: socket.socket) -> None:
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode()
            requests.append(line)
            if line.startswith("CONNECT"):
                connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            connection.sendall(b"HTTP/1.0 200 OK\r\n\r\nfrom the operator's proxy\n")

    with listening(serve) as listener:
        listener.requests = requests  # type: ignore[attr-defined]
        yield listener


def test_egress_goes_through_the_operators_proxy_and_still_applies_the_policy(
        tree: Path, run_sandbox: Run, upstream_proxy: Listener) -> None:
    """Allowed connections go through the operator's proxy (no packet to the destination
    itself, 10.199.0.9, which nothing serves); refused ones never reach the proxy."""
    policy = EgressPolicy(allow=("10.199.0.0/16",), via=f"http://127.0.0.1:{upstream_proxy.port}")
    spec = SandboxSpec(root=tree, network="egress", egress=policy)
    script = ("wget -q -O - http://10.199.0.9/debian/x; "
              "printf 'CONNECT 10.199.0.9:443 HTTP/1.1\\r\\n\\r\\n' | nc -w 3 127.0.0.1 3128; "
              "wget -q -O - http://169.254.169.254/ || echo REFUSED")
    result = run_sandbox(spec, ["sh", "-c", script])
    assert result.stdout.count("from the operator's proxy") == 2, result.stderr
    assert "REFUSED" in result.stdout
    assert upstream_proxy.requests == [  # type: ignore[attr-defined]
        "GET http://10.199.0.9:80/debian/x HTTP/1.1", "CONNECT 10.199.0.9:443 HTTP/1.1"]


def test_the_upstream_proxy_must_be_an_http_url() -> None:
    with pytest.raises(ValueError, match="not an http:// URL"):
        EgressPolicy(via="socks5://127.0.0.1:1080")


@pytest.mark.parametrize("via", ["http://user:secret@proxy.internal:3128",
                                 "http://user@proxy.internal:3128"])
def test_the_upstream_proxy_names_no_user(via: str) -> None:
    with pytest.raises(ValueError, match="names a user") as refused:
        EgressPolicy(via=via)
    assert "secret" not in str(refused.value)
